"""The one reading of a number: typed by a user, or sent by Clarity in a payload.

Every whole number that comes from a user (connection extras, operator and sensor arguments,
ledger settings) goes through ``whole_number``. Every count and every measure in Clarity's
answer goes through ``payload_integer`` and ``payload_decimal``: the normaliser's typed
columns and the derived roll-ups read the same value the same way.
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any

_SIGNED_INT = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


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


def payload_integer(value: Any) -> int:
    """A count as Clarity sends it (``"9554"`` or ``0``), exactly, within int64.

    A string must be ASCII digits with an optional sign and nothing else: ``int()`` alone
    would also take ``" 12"``, ``"1_000"`` and non-ASCII digits. A float counts only when
    whole; a bool never.

    :raises ValueError: when ``value`` is not such a count.
    """
    kind = type(value)
    if kind is str:
        if not (value.isascii() and (value.isdigit() or _SIGNED_INT.fullmatch(value))):
            raise ValueError
        number = int(value)
    elif kind is int:
        number = value
    elif kind is float and value.is_integer():
        number = int(value)
    else:
        raise ValueError
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise ValueError
    return number


def payload_decimal(value: Any) -> float | None:
    """A measure as Clarity sends it (``2.15``, ``"2.15"``, ``0``); ``None`` for NaN.

    :raises ValueError: for an infinite value, a bool, or a string that is not a number.
    """
    kind = type(value)
    if kind is float:
        if math.isnan(value):
            return None
        if math.isinf(value):
            raise ValueError
        return value
    if kind is int:
        return float(value)
    if kind is str:
        number = float(value.strip())
        if not math.isfinite(number):
            raise ValueError
        return number
    raise ValueError
