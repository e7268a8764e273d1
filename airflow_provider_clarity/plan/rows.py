"""Rows per breakdown: measured from kept raw answers, bounded for a merged call.

Every Clarity answer says how many rows each breakdown has: the rows of its blocks. The
planner reads the answers the shared-snapshot index lists (``snapshots/index.py``: the last
48 hours of answers kept where other workers can read them) and keeps, per ``numOfDays`` and
set of dimensions, the most rows one block has had. The quota ledger records requests and
outcomes, not rows, so it cannot say more than this.

A merged call's rows are bounded from those measurements, never guessed:

- rolling up only merges rows, so a breakdown has at most the rows of any measured one that
  holds all its dimensions (``Device`` has at most the rows of ``Device,OS``);
- a breakdown by ``A`` and ``B`` has at most ``rows(A) x rows(B)`` rows (every pair of
  values at most once).

A measurement of ``n`` days also bounds a shorter window (fewer sessions, no more values).
A block of ``ROW_CAP`` rows (or an answer of exactly ``ROW_CAP`` rows in all) may have been
cut short, so it bounds nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from airflow_provider_clarity.api_facts import ROW_CAP, VALID_DIMENSIONS
from airflow_provider_clarity.request import ClarityRequest

log = logging.getLogger(__name__)

#: A merge is packed when its bound stays at or under this: a fifth of the cap is left for
#: values the kept days did not see.
FIT_ROWS = ROW_CAP * 4 // 5


def dimension_names(dims: Iterable[str]) -> str:
    """``dims`` in Clarity's order, comma-separated (``no dimension`` when empty)."""
    chosen = set(dims)
    return ",".join(d for d in VALID_DIMENSIONS if d in chosen) or "no dimension"


@dataclass(frozen=True)
class Measured:
    """The most rows one block of an answer to one request has had, and whether capped."""

    rows: int
    capped: bool


def measure(request: dict[str, str], response: Any) -> tuple[int, frozenset[str], Measured]:
    """``(numOfDays, dimensions, Measured)`` of one kept answer.

    :raises ValueError: the answer is not Clarity's list of blocks.
    """
    if not isinstance(response, list) or not all(
        isinstance(b, dict) and isinstance(b.get("information"), list) for b in response
    ):
        raise ValueError("not Clarity's list of blocks")
    sizes = [len(b["information"]) for b in response]
    rows = max(sizes, default=0)
    capped = rows >= ROW_CAP or sum(sizes) == ROW_CAP
    days = int(request.get("numOfDays", "1"))
    return days, frozenset(ClarityRequest.wire_dimensions(request)), Measured(rows, capped)


@dataclass
class RowCounts:
    """What the kept answers of one project say about its breakdowns' rows."""

    measured: dict[tuple[int, frozenset[str]], Measured] = field(default_factory=dict)
    answers: int = 0
    unreadable: int = 0
    problem: str = ""  # why no answer could be looked for (the index could not be read)

    def add(self, request: dict[str, str], response: Any) -> None:
        """Count one answer: the most rows of every answer to the same request is kept."""
        try:
            days, dims, seen = measure(request, response)
        except (TypeError, ValueError):
            self.unreadable += 1
            return
        self.answers += 1
        key = (days, dims)
        old = self.measured.get(key)
        if old is not None:
            seen = Measured(max(old.rows, seen.rows), old.capped or seen.capped)
        self.measured[key] = seen

    def estimate(self, dims: frozenset[str], days: int) -> tuple[int, str] | None:
        """An upper bound on the rows of one block of a ``dims`` answer over ``days`` days,
        and how it was reached (``Browser 11 x Device 5``); ``None`` when some dimension was
        never measured."""
        return self._estimate(dims, days, {})

    def _estimate(
        self,
        dims: frozenset[str],
        days: int,
        memo: dict[frozenset[str], tuple[int, str] | None],
    ) -> tuple[int, str] | None:
        if dims in memo:
            return memo[dims]
        best: tuple[int, str] | None = None
        for (measured_days, source), seen in self.measured.items():
            if measured_days >= days and not seen.capped and dims and dims <= source:
                where = "" if source == dims else f" (in {dimension_names(source)})"
                text = f"{dimension_names(dims)} {seen.rows}{where}"
                if best is None or seen.rows < best[0]:
                    best = (seen.rows, text)
        ordered = sorted(dims)
        for size in range(1, len(ordered)):
            for part in combinations(ordered[1:], size - 1):
                left = frozenset((ordered[0], *part))
                a, b = self._estimate(left, days, memo), self._estimate(dims - left, days, memo)
                if a is not None and b is not None and (best is None or a[0] * b[0] < best[0]):
                    best = (a[0] * b[0], f"{a[1]} x {b[1]}")
        memo[dims] = best
        return best

    @property
    def dimensions(self) -> frozenset[str]:
        """The dimensions some uncapped answer measured."""
        return frozenset(
            d for (_, dims), seen in self.measured.items() if not seen.capped for d in dims
        )

    def describe(self) -> str:
        """One line for the report: where the row counts came from."""
        if self.problem:
            return f"row counts: none ({self.problem})"
        if not self.answers:
            return (
                "row counts: none measured (no kept answer listed in the shared-snapshot index "
                "yet); triples are packed only from measured rows"
            )
        unread = f", {self.unreadable} unreadable" if self.unreadable else ""
        return (
            f"row counts: measured from {self.answers} kept answer(s) of the last 48 h{unread} "
            f"({len(self.measured)} breakdown(s))"
        )


def kept_rows(project_id: str) -> RowCounts:
    """The row counts of the answers the shared-snapshot index lists for ``project_id``.

    Reads the index Variable and each raw answer it points at (offline: no Clarity call).
    Never raises: an unreadable index or answer only means fewer measurements.
    """
    from airflow_provider_clarity.snapshots.index import SnapshotIndex
    from airflow_provider_clarity.snapshots.raw import PathSnapshotStore
    from airflow_provider_clarity.utils.storage import resolve_path

    counts = RowCounts()
    index = SnapshotIndex(project_id)
    # Airflow logs a traceback for each secrets backend that fails (a CI job without a
    # metadata DB) and goes on to the next; the report says what was found instead.
    variables = logging.getLogger("airflow.models.variable")
    level = variables.level
    variables.setLevel(logging.CRITICAL)
    try:
        entries = index.entries()
    except Exception as exc:  # a corrupt Variable: plan without measurements
        counts.problem = f"the index {index.key} could not be read: {type(exc).__name__}"
        return counts
    finally:
        variables.setLevel(level)
    for entry in entries:
        try:
            snapshot = PathSnapshotStore(resolve_path(entry.location, what="kept answer")).load()
        except Exception as exc:
            log.info("Could not read the kept answer %s (%s)", entry.location, exc)
            snapshot = None
        if snapshot is None or snapshot.fallback or not 200 <= snapshot.status < 300:
            counts.unreadable += 1
            continue
        counts.add(snapshot.request, snapshot.response)
    return counts
