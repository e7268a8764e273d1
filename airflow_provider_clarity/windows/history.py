"""Check a partitioned history: gaps and overlaps per project and breakdown.

Reads every Parquet file under a folder (``dt=.../by_os.parquet`` and so on, as the daily
example DAG writes them), takes each file's window from its ``window_start`` and
``window_end`` columns, and compares consecutive windows of the same ``project_id`` and
``dimensions``. Run it as::

    python -m airflow_provider_clarity.windows.history /data/clarity [--tolerance-minutes 15]

It prints one line per project and breakdown, then one per gap or overlap above the
tolerance, and exits 1 when there is any (so a scheduled check can alert on it), else 0.
pandas and pyarrow are imported only when a check runs.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from airflow_provider_clarity.windows.overlap import DEFAULT_TOLERANCE_MINUTES, compare

_COLUMNS = ["project_id", "dimensions", "window_start", "window_end"]


@dataclass(frozen=True, order=True)
class FileWindow:
    """One snapshot file's window."""

    project_id: str
    dimensions: str
    start: datetime
    end: datetime
    path: str


class FindingKind(StrEnum):
    """What lies between two consecutive windows: a gap, or an overlap."""

    GAP = "gap"
    OVERLAP = "overlap"


@dataclass(frozen=True)
class Finding:
    """A gap or overlap between two consecutive windows of one project and breakdown."""

    kind: FindingKind
    minutes: int
    earlier: FileWindow
    later: FileWindow

    def describe(self) -> str:
        breakdown = self.later.dimensions or "(snapshot)"
        return (
            f"{self.later.project_id} {breakdown}: {self.minutes} min {self.kind} between "
            f"{self.earlier.path} (ends {self.earlier.end.isoformat()}) and {self.later.path} "
            f"(starts {self.later.start.isoformat()})"
        )


def read_windows(root: str | Path) -> list[FileWindow]:
    """The window of every Parquet file under ``root`` that carries the window columns.

    A file without them (written before this version) is skipped with a note on stderr.
    """
    import pyarrow.parquet as pq

    windows: list[FileWindow] = []
    for path in sorted(Path(root).rglob("*.parquet")):
        names = pq.read_schema(path).names
        if not set(_COLUMNS) <= set(names):
            print(
                f"skipped {path}: no window columns (written by an older version)", file=sys.stderr
            )
            continue
        table = pq.read_table(path, columns=_COLUMNS).to_pylist()
        for row in {tuple(row[c] for c in _COLUMNS) for row in table}:
            project_id, dimensions, start, end = row
            windows.append(
                FileWindow(project_id, dimensions, start, end, str(path.relative_to(root)))
            )
    return sorted(windows)


def check(
    root: str | Path, *, tolerance_minutes: int = DEFAULT_TOLERANCE_MINUTES
) -> tuple[list[FileWindow], list[Finding]]:
    """All windows under ``root``, and the gaps and overlaps above ``tolerance_minutes``.

    Windows are compared in order of ``window_start`` within each project and breakdown,
    with the same rule the operator reports at export time (``overlap.compare``).
    """
    windows = read_windows(root)
    findings: list[Finding] = []
    for earlier, later in itertools.pairwise(windows):
        if (earlier.project_id, earlier.dimensions) != (later.project_id, later.dimensions):
            continue
        days = round((later.end - later.start).total_seconds() / 86400)
        covered = compare(later.end, days, earlier.end)
        for kind, minutes in (
            (FindingKind.OVERLAP, covered.overlap_minutes),
            (FindingKind.GAP, covered.gap_minutes),
        ):
            if minutes is not None and minutes > tolerance_minutes:
                findings.append(Finding(kind, minutes, earlier, later))
    return windows, findings


def main(argv: Sequence[str] | None = None) -> int:
    """The ``history`` command; returns the exit code (1 when there are findings)."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_clarity.windows.history",
        description="List gaps and overlaps in a partitioned Clarity history.",
    )
    parser.add_argument("root", help="the folder holding the dt=... partitions")
    parser.add_argument("--tolerance-minutes", type=int, default=DEFAULT_TOLERANCE_MINUTES)
    args = parser.parse_args(argv)
    windows, findings = check(args.root, tolerance_minutes=args.tolerance_minutes)
    series: dict[tuple[str, str], list[FileWindow]] = {}
    for window in windows:
        series.setdefault((window.project_id, window.dimensions), []).append(window)
    for (project_id, dimensions), found in series.items():
        print(
            f"{project_id} {dimensions or '(snapshot)'}: {len(found)} snapshots, "
            f"{found[0].start.isoformat()} -> {found[-1].end.isoformat()}"
        )
    for finding in findings:
        print(finding.describe())
    if not findings:
        print(f"no gap or overlap above {args.tolerance_minutes} min")
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
