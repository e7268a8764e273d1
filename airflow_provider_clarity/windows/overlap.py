"""How a snapshot's window meets the previous snapshot's: overlap or gap, in minutes.

A snapshot of ``num_of_days`` taken at ``exported_at`` covers
``[exported_at - num_of_days x 24 h, exported_at]`` (``window_of``). Daily snapshots of
one day each, taken 24 h apart, meet exactly. A late call (a late retry, a queued pool, an
unpause just before midnight) overlaps the next one; an early one leaves a gap after the
previous one. ``compare`` measures that against the previous successful call of the same
request for the same project, read from the quota ledger's kept calls (48 h).

Nothing is dropped because of an overlap: both files keep their rows and their window
columns, so a warehouse de-duplicates by time (see the warehouse guide).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypedDict

from airflow_provider_clarity.windows.utc import utc_iso

if TYPE_CHECKING:
    from airflow_provider_clarity.quota import QuotaLedger

#: Overlaps and gaps up to this many minutes are normal scheduling jitter, not warned about.
DEFAULT_TOLERANCE_MINUTES = 15


def window_of(exported_at: datetime, num_of_days: int) -> tuple[datetime, datetime]:
    """``(window_start, window_end)`` of a snapshot taken at ``exported_at``."""
    return exported_at - timedelta(days=num_of_days), exported_at


class CoverageExtra(TypedDict):
    """The coverage keys of the operator's return value and asset event extras."""

    window_start: str
    window_end: str
    previous_window_end: str | None
    overlap_minutes: int | None
    gap_minutes: int | None


@dataclass(frozen=True)
class Coverage:
    """A snapshot's window and how it meets the previous one of the same request.

    ``previous_end`` is ``None`` when the ledger keeps no earlier successful call of the
    request (the first run, or none in the last 48 h): then both minutes are ``None``.
    """

    window_start: datetime
    window_end: datetime
    previous_end: datetime | None

    @property
    def overlap_minutes(self) -> int | None:
        """Minutes counted in both this window and the previous one (0 when they do not meet)."""
        if self.previous_end is None:
            return None
        return max(0, _minutes(self.previous_end - self.window_start))

    @property
    def gap_minutes(self) -> int | None:
        """Minutes between the previous window's end and this one's start, in neither."""
        if self.previous_end is None:
            return None
        return max(0, _minutes(self.window_start - self.previous_end))

    def as_extra(self) -> CoverageExtra:
        """JSON-safe keys for the return value and asset event extras."""
        previous = None if self.previous_end is None else utc_iso(self.previous_end)
        return CoverageExtra(
            window_start=utc_iso(self.window_start),
            window_end=utc_iso(self.window_end),
            previous_window_end=previous,
            overlap_minutes=self.overlap_minutes,
            gap_minutes=self.gap_minutes,
        )

    def describe(self) -> str:
        """One sentence for the log summary."""
        if self.previous_end is None:
            return (
                "no earlier snapshot of this request in the quota ledger's 48 h, so no "
                "overlap or gap to report (first run, or a missed day)"
            )
        return (
            f"{self.overlap_minutes} min overlap, {self.gap_minutes} min gap with the previous "
            f"snapshot of this request (ended {utc_iso(self.previous_end)})"
        )

    def problem(self, tolerance_minutes: int) -> str | None:
        """A warning when the overlap or gap exceeds ``tolerance_minutes``, else ``None``."""
        overlap, gap = self.overlap_minutes or 0, self.gap_minutes or 0
        if overlap > tolerance_minutes:
            return (
                f"This snapshot's window overlaps the previous one by {overlap} min: those "
                f"minutes are counted in both files. Nothing was dropped; de-duplicate by "
                f"window_start/window_end in the warehouse (see the windows guide)."
            )
        if gap > tolerance_minutes:
            return (
                f"This snapshot leaves a {gap} min gap after the previous one: Clarity keeps "
                f"no history, so those minutes cannot be fetched any more."
            )
        return None


def compare(exported_at: datetime, num_of_days: int, previous_end: datetime | None) -> Coverage:
    """The coverage of a snapshot taken at ``exported_at`` after one ending ``previous_end``."""
    start, end = window_of(exported_at, num_of_days)
    return Coverage(start, end, previous_end)


def from_ledger(
    ledger: QuotaLedger, request_text: str, exported_at: datetime, num_of_days: int
) -> Coverage:
    """``compare`` against the ledger's last successful call of ``request_text`` before this one."""
    previous = ledger.last_success(request_text, before=exported_at)
    return compare(exported_at, num_of_days, None if previous is None else previous.at)


def _minutes(delta: timedelta) -> int:
    return round(delta.total_seconds() / 60)
