"""`make demo`: run the example daily-snapshot DAG in a local Airflow and show what it wrote.

Without CLARITY_API_TOKEN it starts the Clarity emulator on 127.0.0.1 and spends nothing.
With CLARITY_API_TOKEN set it calls the real API (https://www.clarity.ms) and says how many
of the project's 10 daily calls it will spend first. Output goes to ./demo-output.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Overridable so `make compat` can run the same job on each older Airflow without touching yours.
AIRFLOW_HOME = Path(os.environ.get("CLARITY_DEMO_AIRFLOW_HOME") or REPO / ".airflow-demo")
OUTPUT = Path(os.environ.get("CLARITY_DEMO_OUTPUT") or REPO / "demo-output")
DAG_ID = "clarity_daily_snapshot"
BIN = Path(sys.executable).parent


def _airflow(env: dict[str, str], *args: str, quiet: bool = True) -> None:
    result = subprocess.run(  # noqa: S603 (our own venv's airflow CLI, fixed arguments)
        [str(BIN / "airflow"), *args], env=env, capture_output=quiet, text=True, check=False
    )
    if result.returncode != 0:
        if quiet:
            sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        raise SystemExit(f"`airflow {' '.join(args[:2])}` failed (exit {result.returncode})")


def _calls_in_dag() -> int:
    sys.path.insert(0, str(REPO / "example_dags"))
    from clarity_daily_snapshot import BREAKDOWNS

    return len(BREAKDOWNS)


def _summary() -> None:
    import pandas as pd

    files = sorted(OUTPUT.rglob("*.parquet"))
    if not files:
        raise SystemExit(f"The demo wrote no Parquet file under {OUTPUT}")
    print(f"\nWrote {len(files)} Parquet files under {_shown(OUTPUT)}/:")
    for path in files:
        frame = pd.read_parquet(path)
        raw = path.with_name(path.stem + ".raw.json")
        print(
            f"\n  {_shown(path)}  {len(frame)} rows, {frame['metric'].nunique()} metrics"
            f"{'  (raw kept: ' + raw.name + ')' if raw.exists() else ''}"
        )
        traffic = frame[frame["metric"] == "Traffic"]
        dims = [
            c
            for c in ("url", "country", "device", "os")
            if c in traffic.columns and traffic[c].notna().any()
        ]
        if traffic.empty:
            continue
        if not dims:
            total = traffic["total_session_count"].sum()
            print(f"    sessions in the last 24 h: {total:,}")
            pages = frame[frame["metric"] == "PopularPages"].nlargest(3, "visits_count")
            for _, row in pages.iterrows():
                print(f"    top page {row['visits_count']:>7,} visits  {str(row['url'])[:70]}")
            continue
        top = traffic.dropna(subset=dims).nlargest(3, "total_session_count")
        for _, row in top.iterrows():
            label = " / ".join(str(row[d])[:60] for d in dims)
            print(f"    {row['total_session_count']:>9,} sessions  {label}")


def main() -> None:
    sys.path.insert(0, str(REPO))
    token = os.environ.get("CLARITY_API_TOKEN", "").strip()
    env = os.environ.copy()
    env.update(
        AIRFLOW_HOME=str(AIRFLOW_HOME),
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "example_dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
        AIRFLOW_VAR_CLARITY_EXPORT_BASE=OUTPUT.as_uri(),
    )
    AIRFLOW_HOME.mkdir(exist_ok=True)
    OUTPUT.mkdir(exist_ok=True)
    print("Setting up a local Airflow in .airflow-demo (sqlite) ...", flush=True)
    _airflow(env, "db", "migrate")
    _airflow(env, "pools", "set", "clarity_api", "1", "Serialises Clarity API calls")

    with ExitStack() as stack:
        if token:
            project = os.environ.get("CLARITY_PROJECT_ID", "clarity-demo")
            extra = {"project_id": project}
            host = "https://www.clarity.ms"
            print(
                f"CLARITY_API_TOKEN is set: calling the real Clarity API for project '{project}'."
                f"\nThis spends {_calls_in_dag()} of the project's 10 daily calls"
                " (none for a snapshot already kept in demo-output today).",
                flush=True,
            )
        else:
            from airflow_provider_clarity.testing.emulator import ClarityEmulator

            emulator = stack.enter_context(ClarityEmulator(seed=7))
            project = "demo-emulator"
            token = emulator.issue_token(project)
            host = emulator.base_url
            extra = {"project_id": project}
            # Each emulator starts with a fresh quota, so the demo's ledger starts fresh too.
            _airflow(env, "variables", "delete", f"clarity_quota__{project}")
            shutil.rmtree(OUTPUT, ignore_errors=True)
            OUTPUT.mkdir()
            print(f"Clarity emulator serving on {host} (no real API call is made).", flush=True)
        env["AIRFLOW_CONN_CLARITY_DEFAULT"] = json.dumps(
            {"conn_type": "clarity", "host": host, "password": token, "extra": extra}
        )
        print(f"Running DAG {DAG_ID} with `airflow dags test` ...", flush=True)
        _airflow(env, "dags", "test", DAG_ID, quiet=not os.environ.get("DEMO_VERBOSE"))
    _summary()
    usage = f"{_shown(BIN / 'python')} -m airflow_provider_clarity.quota usage {project}"
    print(f"\nSee who spent today's calls: AIRFLOW_HOME={_shown(AIRFLOW_HOME)} {usage}")


def _shown(path: Path) -> Path:
    """``path`` relative to the checkout when it is inside it (as the README writes paths)."""
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


if __name__ == "__main__":
    main()
