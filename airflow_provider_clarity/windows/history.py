"""Check a partitioned history: gaps and overlaps per project and breakdown.

Reads every Parquet file under a folder (``dt=.../by_os.parquet`` and so on, as the daily
example DAG writes them), takes each file's window from its ``window_start`` and
``window_end`` columns, and compares consecutive windows of the same ``project_id`` and
``dimensions``. The folder is any URI the operator writes to, read through
``ObjectStoragePath`` (``/data/clarity``, ``file:///data/clarity``,
``s3://aws_default@bucket/clarity``...). Run it as::

    python -m airflow_provider_clarity.windows.history s3://bucket/clarity [--tolerance-minutes 15]

It prints one line per project and breakdown, then one per gap or overlap above the
tolerance, and exits 1 when there is any (so a scheduled check can alert on it), else 0. A
folder that does not exist or holds no exported file is an error (exit 2): a check that
cannot fail would be worse than none. pyarrow is imported only when a check runs.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_provider_clarity.exceptions import ClarityError
from airflow_provider_clarity.windows.overlap import DEFAULT_TOLERANCE_MINUTES, compare

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

#: The exit code when the history cannot be checked: a missing folder, no exported file.
EXIT_UNCHECKED = 2

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


class HistoryError(ClarityError):
    """The history cannot be checked: the folder is missing, unreadable or holds no export."""


def history_root(root: str | Path | ObjectStoragePath) -> ObjectStoragePath:
    """The folder to check, as the operator names destinations: a local path (relative to the
    current directory here), ``file://``, or an object store URI with its filesystem installed.

    :raises HistoryError: when it does not exist.
    :raises ClarityRequestError: when no filesystem handles its scheme.
    """
    from airflow_provider_clarity.utils.storage import resolve_path

    if isinstance(root, Path) or (isinstance(root, str) and "://" not in root):
        root = Path(os.path.abspath(root)).as_uri()
    path = resolve_path(root, what="the history folder", folder_ok=True)
    if not path.exists():
        raise HistoryError(
            f"{_shown(path)} does not exist, so there is no history to check. Give the folder "
            "the exports write under (the part before dt=...), as the operator's destination "
            "names it, e.g. s3://aws_default@bucket/clarity."
        )
    return path


def _shown(path: ObjectStoragePath) -> str:
    """A path as people wrote it, without a connection id or credentials."""
    return f"{path.protocol}://{path.path}" if path.protocol else str(path.path)


def read_windows(root: str | Path | ObjectStoragePath) -> list[FileWindow]:
    """The window of every Parquet file under ``root`` that carries the window columns.

    A file without them (written before this version) is skipped with a note on stderr.

    :raises HistoryError: ``root`` does not exist, or no file under it carries a window.
    """
    import pyarrow.parquet as pq

    folder = history_root(root)
    base = str(folder.path).rstrip("/")
    windows: list[FileWindow] = []
    files = sorted(folder.rglob("*.parquet"), key=lambda p: str(p.path))
    for path in files:
        relative = str(path.path)[len(base) :].lstrip("/")
        with path.open("rb") as handle:
            parquet = pq.ParquetFile(handle)
            if not set(_COLUMNS) <= set(parquet.schema_arrow.names):
                print(
                    f"skipped {relative}: no window columns (written by an older version)",
                    file=sys.stderr,
                )
                continue
            table = parquet.read(columns=_COLUMNS).to_pylist()
        for row in {tuple(row[c] for c in _COLUMNS) for row in table}:
            project_id, dimensions, start, end = row
            windows.append(FileWindow(project_id, dimensions, start, end, relative))
    if not windows:
        found = f"{len(files)} Parquet file(s), none with" if files else "no Parquet file with"
        raise HistoryError(
            f"{_shown(folder)} holds {found} the window columns of an export "
            "(window_start, window_end), so there is nothing to check. Is it the folder the "
            "exports write under, and have they run?"
        )
    return sorted(windows)


def check(
    root: str | Path | ObjectStoragePath, *, tolerance_minutes: int = DEFAULT_TOLERANCE_MINUTES
) -> tuple[list[FileWindow], list[Finding]]:
    """All windows under ``root``, and the gaps and overlaps above ``tolerance_minutes``.

    Windows are compared in order of ``window_start`` within each project and breakdown,
    with the same rule the operator reports at export time (``overlap.compare``).

    :raises HistoryError: see ``read_windows``.
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
    """The ``history`` command; returns the exit code: 1 when there are findings, 2
    (``EXIT_UNCHECKED``) when the folder is missing or holds no export, else 0."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_clarity.windows.history",
        description="List gaps and overlaps in a partitioned Clarity history.",
    )
    parser.add_argument(
        "root",
        help="the folder holding the dt=... partitions: a local path, file://, s3://, gs://...",
    )
    parser.add_argument("--tolerance-minutes", type=int, default=DEFAULT_TOLERANCE_MINUTES)
    args = parser.parse_args(argv)
    try:
        windows, findings = check(args.root, tolerance_minutes=args.tolerance_minutes)
    except (ClarityError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_UNCHECKED
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
