"""``python -m airflow_provider_clarity.testing``: serve the Clarity emulator from a shell.

Prints, one per line and flushed at once so a parent process can read them::

    CLARITY_EMULATOR_URL=http://127.0.0.1:PORT
    CLARITY_TOKEN=<jwt>
    AIRFLOW_CONN_CLARITY_DEFAULT=<connection JSON>
    export AIRFLOW_CONN_CLARITY_DEFAULT='<connection JSON>'

then serves until Ctrl-C or SIGTERM. The token is a test token signed with a key that
exists only in this process: printing it is harmless, and it is useless against the real
Clarity service or any other emulator run.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from airflow_provider_clarity.testing.emulator import ClarityEmulator, Spelling


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_clarity.testing",
        description="Serve an emulator of the Microsoft Clarity Data Export API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    parser.add_argument("--project", default="demo-project", help="project the token is for")
    parser.add_argument("--daily-limit", type=int, default=10, help="calls per project per window")
    parser.add_argument("--window", choices=("utc_day", "rolling"), default="utc_day")
    parser.add_argument("--rolling-window-seconds", type=int, default=86400)
    parser.add_argument(
        "--count-failed-calls",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="charge 400/500 answers and dropped connections to the quota",
    )
    parser.add_argument(
        "--vendor-spelling",
        choices=("live", "vendor", "mixed"),
        default="live",
        help="Traffic field spellings: live (distinctUserCount), vendor (distantUserCount), mixed",
    )
    parser.add_argument("--os-key", default="Os", help="row key of the OS dimension (Os or OS)")
    parser.add_argument(
        "--row-cap-scope",
        choices=("block", "response"),
        default="block",
        help="the 1000-row cap applies to each block, or to the whole response",
    )
    parser.add_argument(
        "--refresh-seconds",
        type=int,
        default=3600,
        help="answers end at the call time floored to this; 0 for the exact call time",
    )
    parser.add_argument(
        "--mobile-app",
        action="store_true",
        help="answer for the project as a mobile app (DeadTapCount, PopularScreens...)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until interrupted; returns the process exit code."""
    args = _parser().parse_args(argv)
    spellings: dict[str, Spelling] = {"live": False, "vendor": True, "mixed": "mixed"}
    emulator = ClarityEmulator(
        host=args.host,
        port=args.port,
        seed=args.seed,
        daily_limit=args.daily_limit,
        window=args.window,
        rolling_window_seconds=args.rolling_window_seconds,
        count_failed_calls=args.count_failed_calls,
        vendor_spelling=spellings[args.vendor_spelling],
        os_key=args.os_key,
        row_cap_scope=args.row_cap_scope,
        refresh_seconds=args.refresh_seconds,
    )
    done = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with emulator:
        emulator.configure_project(args.project, mobile_app=args.mobile_app)
        token = emulator.issue_token(args.project)
        conn = emulator.airflow_conn_json(token, project_id=args.project)
        print(f"CLARITY_EMULATOR_URL={emulator.base_url}")
        print(f"CLARITY_TOKEN={token}")
        print(f"AIRFLOW_CONN_CLARITY_DEFAULT={conn}")
        print(f"export AIRFLOW_CONN_CLARITY_DEFAULT='{conn}'", flush=True)
        print(
            f"Serving the Clarity emulator for project {args.project!r} "
            f"on {emulator.base_url}; Ctrl-C to stop.",
            file=sys.stderr,
            flush=True,
        )
        while not done.wait(0.5):
            pass
    print("Clarity emulator stopped.", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
