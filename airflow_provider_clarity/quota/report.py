"""Render a ledger's ``QuotaStatus`` as text for people: the usage report and refusals.

Words only. Every number comes from the ``QuotaStatus`` the ledger computed, so the
report, the refusal message and the UI can never disagree about what is left.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from airflow_provider_clarity.connection.settings import QuotaSettings
from airflow_provider_clarity.exceptions import (
    ClarityDegradedError,
    ClarityQuotaExceededError,
    QuotaSource,
)
from airflow_provider_clarity.quota.records import CallRecord
from airflow_provider_clarity.windows.utc import utc_text

# C0 and C1 controls, DEL, zero-width and bidi marks, line and paragraph separators, bidi
# embeddings, overrides and isolates, invisible operators, the byte order mark.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")


def printable(text: object) -> str:
    """``text`` with every character that could steer a terminal or reorder what is read
    (escape sequences, ``\\r``, C1 controls, bidi overrides...) written as its Python escape
    (``\\x1b``, ``\\u202e``): what ``usage`` and the quota page show of stored strings."""
    return _UNSAFE.sub(lambda found: ascii(found.group())[1:-1], str(text))


@dataclass(frozen=True)
class QuotaStatus:
    """One project's quota at one moment, as the ledger sees it.

    ``counted`` are the calls that count in the current window, ``earlier`` the other kept
    ones; ``next_reset`` is when one call is available (``now`` if one is, ``None`` never).
    """

    settings: QuotaSettings
    key: str
    now: datetime
    counted: tuple[CallRecord, ...]
    earlier: tuple[CallRecord, ...]
    remaining: int
    next_reset: datetime | None
    exhausted_until: datetime | None
    degraded_until: datetime | None = None

    @property
    def exhausted(self) -> bool:
        """Whether a 429 marks the project spent right now."""
        return self.exhausted_until is not None and self.exhausted_until > self.now

    @property
    def degraded(self) -> bool:
        """Whether a Clarity outage keeps every task from calling right now."""
        return self.degraded_until is not None and self.degraded_until > self.now


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:g} h"


def usage_text(status: QuotaStatus) -> str:
    """A readable report: settings, used, remaining, next reset, and who spent what."""
    settings = status.settings
    now = status.now
    lines = [
        f"Clarity quota for project {settings.project_id!r} (Variable {status.key})",
        f"  now:        {utc_text(now)}",
        f"  window:     {settings.describe_window(now)}",
        f"  limit:      {settings.daily_limit} calls, reserve {settings.reserve} "
        f"-> {settings.capacity} for Airflow",
        f"  used:       {len(status.counted)} in this window",
        f"  remaining:  {status.remaining}",
    ]
    if status.exhausted and status.exhausted_until is not None:
        until = utc_text(status.exhausted_until)
        lines.append(f"  exhausted:  Clarity answered 429; counted as spent until {until}")
    if status.degraded and status.degraded_until is not None:
        until = utc_text(status.degraded_until)
        lines.append(
            f"  degraded:   Clarity failed every attempt with 5xx; no call until {until} (a probe)"
        )
    if status.next_reset is None:
        lines.append("  next call:  never (the reserve keeps every call for people outside)")
    else:
        when = "now" if status.next_reset <= now else utc_text(status.next_reset)
        lines.append(f"  next call:  {when}")
    lines.append(
        "Calls in this window, by caller:" if status.counted else "No calls in this window."
    )
    lines.extend(_by_caller(status.counted))
    if status.earlier:
        lines.append(f"Earlier calls (kept {_hours(settings.keep_for())}), by caller:")
        lines.extend(_by_caller(status.earlier))
    return "\n".join(lines)


def never_message(settings: QuotaSettings, calls: int) -> str:
    """Why ``calls`` can never be available: the reserve leaves Airflow too few."""
    return (
        f"{calls} call(s) can never be available for project {settings.project_id!r}: daily_limit "
        f"{settings.daily_limit} minus reserve {settings.reserve} leaves {settings.capacity} for "
        "Airflow. Lower the reserve or the number of calls needed."
    )


def exceeded_error(
    status: QuotaStatus, calls: int, reset_at: datetime | None
) -> ClarityQuotaExceededError:
    """The refusal when ``calls`` are needed and fewer remain; ``reset_at`` when they will."""
    settings = status.settings
    top = Counter(record.caller for record in status.counted).most_common(3)
    spent_by = ", ".join(f"{caller} ({n})" for caller, n in top) or "nobody in Airflow"
    parts = [
        f"Clarity quota for project {settings.project_id!r}: {calls} call(s) needed, "
        f"{status.remaining} left.",
        f"{len(status.counted)} of {settings.capacity} calls available to Airflow are used in the "
        f"current {settings.window} window (limit {settings.daily_limit}, reserve "
        f"{settings.reserve}); spent by {spent_by}.",
    ]
    if status.exhausted and status.exhausted_until is not None:
        parts.append(
            "Clarity answered 429, so calls made outside Airflow used the rest; the project "
            f"counts as spent until {utc_text(status.exhausted_until)}."
        )
    if status.degraded and status.degraded_until is not None:
        parts.append(
            "Clarity failed every attempt of a recent call with HTTP 5xx (an outage), so to save "
            f"the project's calls no task calls it until {utc_text(status.degraded_until)}; the "
            "first call then is one probe. Set the connection's degraded_cooldown_seconds extra "
            "to 0 to turn this off."
        )
    if reset_at is None:
        parts.append(never_message(settings, calls))
    else:
        parts.append(f"Enough calls are available again at {utc_text(reset_at)}.")
    parts.append(f"Details: python -m airflow_provider_clarity.quota usage {settings.project_id}")
    if status.degraded:
        return ClarityDegradedError(" ".join(parts), reset_at=reset_at, source=QuotaSource.DEGRADED)
    return ClarityQuotaExceededError(" ".join(parts), reset_at=reset_at, source=QuotaSource.LEDGER)


def _by_caller(records: Sequence[CallRecord]) -> list[str]:
    groups: dict[str, list[CallRecord]] = {}
    for record in records:
        groups.setdefault(record.caller, []).append(record)
    lines = []
    for caller, calls in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])):
        lines.append(f"  {caller}: {len(calls)} call(s)")
        for record in calls:
            request = f"  {record.request}" if record.request else ""
            lines.append(f"    {utc_text(record.at)}  {record.outcome}{request}")
    return lines
