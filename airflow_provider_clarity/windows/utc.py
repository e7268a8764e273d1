"""The two UTC formats: text for people, ISO-8601 for data.

Every moment shown to a person goes through ``utc_text``; every moment stored or returned as
data (the ledger, XCom, asset extras, the quota page's JSON) goes through ``utc_iso``.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_text(moment: datetime, *, minutes: bool = False) -> str:
    """``2025-03-15 00:01:00 UTC``: a moment for people (``minutes=True`` drops seconds)."""
    layout = "%Y-%m-%d %H:%M UTC" if minutes else "%Y-%m-%d %H:%M:%S UTC"
    return moment.astimezone(UTC).strftime(layout)


def utc_iso(moment: datetime) -> str:
    """``2025-03-15T00:01:00+00:00``: a moment as data (ledger, XCom, asset extras)."""
    return moment.astimezone(UTC).isoformat()
