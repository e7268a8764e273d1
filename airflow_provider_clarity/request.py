"""Loose user input -> a validated ``ClarityRequest``.

The one place that knows what Clarity accepts as a request. Operators check their
literal arguments here at DAG parse time (``parse_num_of_days``, ``check_dimensions``) and
build the request here at run time (``ClarityRequest.build``); the hook only sends what
this module has validated. Nothing here does I/O.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from airflow_provider_clarity.api_facts import (
    DIMENSION_ALIASES,
    DIMENSION_HINTS,
    MAX_DIMENSIONS,
    NUM_OF_DAYS,
    VALID_DIMENSIONS,
)
from airflow_provider_clarity.exceptions import ClarityRequestError
from airflow_provider_clarity.utils.numbers import whole_number

log = logging.getLogger(__name__)

_CANONICAL = {name.lower(): name for name in VALID_DIMENSIONS}


def valid_names() -> str:
    """The valid dimension names, comma-separated, for error messages."""
    return ", ".join(VALID_DIMENSIONS)


def _suggest(name: str) -> str | None:
    """Return the valid dimension a user most likely meant by ``name``, if any is close."""
    import difflib  # only when a name is wrong: DAG files parse without it

    key = name.strip().lower()
    compact = key.replace(" ", "").replace("-", "").replace("_", "")
    for candidate in (key, compact):
        if candidate in DIMENSION_HINTS:
            return DIMENSION_HINTS[candidate]
    close = difflib.get_close_matches(key, list(_CANONICAL), n=1, cutoff=0.6)
    if close:
        return _CANONICAL[close[0]]
    for lowered, canonical in _CANONICAL.items():
        if len(lowered) > 2 and lowered in key:
            return canonical
    return None


def parse_num_of_days(value: object) -> int:
    """``num_of_days`` as Clarity takes it: 1, 2 or 3 (an int or a string of digits).

    :raises ClarityRequestError: anything else, with what to do for a longer period.
    """
    days = None if isinstance(value, float) else whole_number(value)
    if days not in NUM_OF_DAYS:
        raise ClarityRequestError(
            f"num_of_days must be 1, 2 or 3; got {value!r}. Clarity returns only the last 24, 48 "
            f"or 72 hours and keeps no history. For a longer period, run the task daily with "
            f"num_of_days=1 and keep each day's output under a dated destination, as the "
            f"example DAG clarity_daily_snapshot does."
        )
    assert days is not None
    return days


def _names_from_string(text: str) -> list[str]:
    """Read "OS", "OS,Device", or a list a template rendered to a string ("['OS', 'Device']")."""
    text = text.strip()
    bracketed = text[:1] + text[-1:] in ("[]", "()")
    if not bracketed:
        if text[:1] in ("[", "(") or text[-1:] in ("]", ")"):
            raise ClarityRequestError(
                f"dimensions {text!r} looks like a list but its brackets do not match. Pass a "
                f"list such as ['OS', 'Device'] or a string such as 'OS,Device'. "
                f"Valid: {valid_names()}."
            )
        names = [part.strip() for part in text.split(",") if part.strip()]
        if not names:
            raise ClarityRequestError(
                f"dimensions {text!r} names no dimension. For the no-dimension snapshot, leave "
                f"dimensions out or pass dimensions=[] (a template may render '[]'); otherwise "
                f"name up to {MAX_DIMENSIONS} of: {valid_names()}."
            )
        return names
    try:
        parsed = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        # "[OS, Device]": rendered without quotes, still unambiguous.
        return [part.strip().strip("'\"").strip() for part in text[1:-1].split(",") if part.strip()]
    if isinstance(parsed, str):
        parsed = [parsed]
    if not isinstance(parsed, list | tuple) or not all(isinstance(p, str) for p in parsed):
        raise ClarityRequestError(
            f"dimensions {text!r} is not a list of names. Pass a list such as ['OS', 'Device'] "
            f"or a string such as 'OS,Device'. Valid: {valid_names()}."
        )
    return [name.strip() for name in parsed]


def _split_dimensions(value: Iterable[str] | str | None) -> list[str]:
    """Turn every accepted spelling of a dimension list into a list of raw names."""
    if value is None:
        return []
    if isinstance(value, str):
        return _names_from_string(value)
    if isinstance(value, set | frozenset):
        raise ClarityRequestError(
            f"dimensions {sorted(map(repr, value))} is a set, and a set has no order: Clarity "
            f"breaks the data down by dimension1, dimension2, dimension3 in the order given. "
            f"Pass a list such as ['OS', 'Device']."
        )
    if isinstance(value, dict | bytes | bytearray) or not isinstance(value, Iterable):
        raise ClarityRequestError(
            f"dimensions must be a list of names or a comma-separated string; got "
            f"{type(value).__name__}. Valid: {valid_names()}."
        )
    names: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise ClarityRequestError(
                f"dimension names must be strings; got {item!r}. Valid: {valid_names()}."
            )
        names.append(item.strip())
    return names


def check_dimensions(value: Iterable[str] | str | None) -> None:
    """Validate dimension names like ``ClarityRequest.build``, without logging anything.

    For checks at DAG parse time, which run every few seconds on the DAG processor.

    :raises ClarityRequestError: as ``ClarityRequest.build`` does.
    """
    _canonical_dimensions(_split_dimensions(value), announce=False)


def _canonical_dimensions(raw_names: list[str], *, announce: bool = True) -> tuple[str, ...]:
    canonical: list[str] = []
    problems: list[str] = []
    for name in raw_names:
        key = name.lower()
        if key in _CANONICAL:
            resolved = _CANONICAL[key]
        elif key in DIMENSION_ALIASES:
            resolved = DIMENSION_ALIASES[key]
            if announce:
                log.info(
                    "Sending dimension %r as %r: the live Clarity API ignores %r and answers with "
                    "the no-dimension snapshot, while %r breaks down by geography.",
                    name,
                    resolved,
                    name,
                    resolved,
                )
        else:
            if not name:
                problems.append("A dimension name is empty")
                continue
            suggestion = _suggest(name)
            hint = f"; did you mean {suggestion!r}?" if suggestion else ""
            problems.append(f"Clarity has no dimension {name!r}{hint}")
            continue
        if resolved not in canonical:
            canonical.append(resolved)
    if problems:
        text = "; ".join(problems)
        raise ClarityRequestError(
            f"{text}{'' if text.endswith('?') else '.'} Valid: {valid_names()}."
        )
    if len(canonical) > MAX_DIMENSIONS:
        raise ClarityRequestError(
            f"Clarity accepts at most {MAX_DIMENSIONS} dimensions per call; got {len(canonical)} "
            f"({', '.join(canonical)}). Split them over several calls, keeping in mind each "
            f"call is one of the project's 10 a day."
        )
    return tuple(canonical)


@dataclass(frozen=True)
class ClarityRequest:
    """One validated call to Clarity's live-insights endpoint.

    Build it with ``build``, which accepts the loose forms templates produce. Creating it
    directly requires the canonical form and validates it too, so an instance is always a
    request Clarity will honour.

    :raises ClarityRequestError: when the request is invalid; nothing has been sent.
    """

    num_of_days: int
    dimensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.num_of_days, int) or (
            parse_num_of_days(self.num_of_days) != self.num_of_days
        ):
            raise ClarityRequestError(
                f"num_of_days must be the int 1, 2 or 3; got {self.num_of_days!r}. "
                f"ClarityRequest.build() accepts numeric strings."
            )
        if not isinstance(self.dimensions, tuple) or (
            _canonical_dimensions(list(self.dimensions)) != self.dimensions
        ):
            raise ClarityRequestError(
                f"dimensions must be a tuple of distinct names spelled as Clarity expects "
                f"({valid_names()}); got {self.dimensions!r}. ClarityRequest.build() "
                f"normalises case, aliases and duplicates."
            )

    @classmethod
    def build(
        cls, num_of_days: int | str = 1, dimensions: Iterable[str] | str | None = ()
    ) -> ClarityRequest:
        """Validate and normalise loose input into a request.

        ``dimensions`` may be a list or tuple, a string ``"OS"`` or ``"OS,Device"``, or a
        Python list rendered to a string by a template (``"['OS', 'Device']"``). Names are
        matched case-insensitively, ``Country/Region`` becomes ``Country`` and duplicates
        are dropped, keeping the first occurrence's position.

        :raises ClarityRequestError: with the valid names and, when one is close, a suggestion.
        """
        days = parse_num_of_days(num_of_days)
        return cls(
            num_of_days=days, dimensions=_canonical_dimensions(_split_dimensions(dimensions))
        )

    def params(self) -> dict[str, str]:
        """Return the query string as a dict: ``{"numOfDays": "1", "dimension1": "OS"}``."""
        query = {"numOfDays": str(self.num_of_days)}
        for position, name in enumerate(self.dimensions, start=1):
            query[f"dimension{position}"] = name
        return query

    @staticmethod
    def wire_dimensions(params: Mapping[str, str]) -> list[str]:
        """The dimensions of a query string ``params()`` made, in order (kept snapshots store
        the query as sent)."""
        keys = (f"dimension{position}" for position in range(1, MAX_DIMENSIONS + 1))
        return [params[k] for k in keys if params.get(k)]

    def describe(self) -> str:
        """Return a short description for logs, e.g. ``numOfDays=1 dimensions=OS,Device``."""
        return f"numOfDays={self.num_of_days} dimensions={','.join(self.dimensions) or 'none'}"
