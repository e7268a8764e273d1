"""One rule each for the values users type and the times users read.

STYLE: every whole number that comes from a user (connection extras, operator and sensor
arguments, ledger settings) goes through ``whole_number``; every moment shown to a person
goes through ``utc_text``, and every moment stored or returned as data goes through
``utc_iso``. Two formats only: text for people, ISO-8601 for machines.
"""

from __future__ import annotations

import numbers
from datetime import UTC, datetime

__all__ = ["utc_iso", "utc_text", "whole_number"]


def whole_number(value: object) -> int | None:
    """The integer ``value`` stands for, or ``None`` when it is not a whole number.

    Accepted: an int (never a bool), a float with no fractional part, and a string of ASCII
    digits with an optional leading ``-`` and surrounding spaces (what a form or a template
    renders). ``2.9``, ``True``, ``"1.5"``, ``"¹"`` and ``""`` are not whole numbers.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text.startswith("-") else text
        if digits and digits.isascii() and digits.isdigit():
            return int(text)
    return None


def utc_text(moment: datetime, *, minutes: bool = False) -> str:
    """``2025-03-15 00:01:00 UTC``: a moment for people (``minutes=True`` drops seconds)."""
    layout = "%Y-%m-%d %H:%M UTC" if minutes else "%Y-%m-%d %H:%M:%S UTC"
    return moment.astimezone(UTC).strftime(layout)


def utc_iso(moment: datetime) -> str:
    """``2025-03-15T00:01:00+00:00``: a moment as data (ledger, XCom, asset extras)."""
    return moment.astimezone(UTC).isoformat()
