"""How long the session-consistent emulator takes to answer, against reading the answer.

The emulator aggregates a population of sessions on every call. Its cost is compared with
what any client pays for the same answer: ``json.loads`` of the body (baseline) and
``normalize.to_dataframe``. Figures are ratios of medians of samples taken side by side.

    .venv/bin/python benchmarks/emulator_answer.py [--reps N]

Cases: the 9 x 1000-row ``URL`` breakdown (1 and 3 days), a 3-dimension breakdown, and the
16-block snapshot. Repeated calls find the window's sessions cached (as calls within one
refresh interval do); "cold" is the first call of a process, which generates the days.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

CASES: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("URL, 1 day", 1, ("URL",)),
    ("URL, 3 days", 3, ("URL",)),
    ("URL+Device+Country, 1 day", 1, ("URL", "Device", "Country")),
    ("snapshot, 1 day", 1, ()),
)


def _time(work: Callable[[], object]) -> float:
    gc.collect()
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args(argv)

    from airflow_provider_clarity import normalize
    from airflow_provider_clarity.testing import population
    from airflow_provider_clarity.testing.emulator import ClarityEmulator

    at = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)
    emulator = ClarityEmulator(clock=lambda: at)  # not started: payload() needs no server
    emulator.configure_project("bench", url_count=1200)

    population.generate_day.cache_clear()
    population.window.cache_clear()
    cold = _time(lambda: emulator.payload("bench", num_of_days=1, dimensions=("URL",)))
    print(f"cold first call (generates 2 days of sessions): {cold:.3f} s")
    print(f"{'case':28} {'rows':>5} {'emulator':>9} {'json.loads':>10} {'ratio':>6} {'to_df':>7}")
    for name, days, dims in CASES:
        payload = emulator.payload("bench", num_of_days=days, dimensions=dims)
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        rows = sum(len(b["information"]) for b in payload)
        samples: dict[str, list[float]] = {"emulator": [], "loads": [], "to_df": []}
        for _ in range(args.reps):
            samples["emulator"].append(
                _time(lambda d=days, m=dims: emulator.payload("bench", num_of_days=d, dimensions=m))
            )
            samples["loads"].append(_time(lambda b=body: json.loads(b)))
            samples["to_df"].append(_time(lambda p=payload: normalize.to_dataframe(p)))
        med = {k: statistics.median(v) for k, v in samples.items()}
        print(
            f"{name:28} {rows:>5} {med['emulator']:>8.3f}s {med['loads']:>9.3f}s "
            f"{med['emulator'] / med['loads']:>5.1f}x {med['to_df']:>6.3f}s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
