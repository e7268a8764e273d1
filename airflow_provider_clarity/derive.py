"""Derived breakdowns: the coarser answer Clarity would have given, computed from a finer one.

One call broken down by ``Device, OS`` holds the ``Device`` breakdown too: every session
has one device and one OS, so summing the OS rows of each device gives the device's
sessions. :func:`roll_up` does that summing, in Clarity's own shape (a list of
``{metricName, information}`` blocks, dimension keys as Clarity spells them, counts as
strings), so :func:`airflow_provider_clarity.normalize.to_dataframe` and the output schema
apply unchanged.

Rules (each refusal is a :class:`~airflow_provider_clarity.exceptions.ClarityRequestError`
saying why):

- Only session-level dimensions (Browser, Device, Country, OS, Source, Medium, Campaign,
  Channel) may be summed out. ``URL`` never: a session visits several pages, so URL rows
  overlap and their sum over-counts sessions. ``URL`` may stay as a remaining dimension:
  the sessions that visited one page are split by device (or any session-level
  dimension) without overlap, so summing over devices gives that page's sessions exactly.
- Counts (``totalSessionCount``, ``totalBotSessionCount``, ``sessionsCount``,
  ``pagesViews``, ``subTotal``, and the mobile ``screensViews``) are summed.
- Percentages and averages are recomputed, weighted by the sessions they are a share of:
  ``pagesPerSessionPercentage`` by the row's ``totalSessionCount``; the click blocks'
  ``sessionsWith(out)MetricPercentage`` by the row's ``sessionsCount``; ``averageScrollDepth``,
  ``totalTime`` and ``activeTime`` (per-session averages, rows without a session count) by
  the same group's non-bot sessions in ``Traffic`` (``totalSessionCount -
  totalBotSessionCount``), the sessions those blocks describe (assumed; see docs/derive.md).
- What cannot be derived is left empty (``null``), never guessed: ``distinctUserCount`` (a
  user with sessions on two devices is one user of the pair but two of the sum), any field
  this module does not know, and any field some contributing row lacks.
- A source block of 1000 rows (``ROW_CAP``), or a response of exactly 1000 rows in all,
  may have been cut short, and is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from airflow_provider_clarity.api_facts import (
    MAX_DIMENSIONS,
    ROW_CAP,
    SESSION_DIMENSIONS,
    VALID_DIMENSIONS,
)
from airflow_provider_clarity.exceptions import ClarityRequestError
from airflow_provider_clarity.normalize import COUNT_FIELDS
from airflow_provider_clarity.utils.numbers import payload_decimal, payload_integer

__all__ = ["DerivedPayload", "roll_up", "validate_roll_up"]

#: Fields summed across the rows that make up a derived row.
SUMMED_FIELDS: frozenset[str] = frozenset(
    {"totalSessionCount", "totalBotSessionCount", "sessionsCount", "pagesViews", "screensViews"}
    | {"subTotal"}
)
#: Fields left null in a derived row: they count distinct things that overlap across rows.
UNDERIVABLE_FIELDS: frozenset[str] = frozenset({"distinctUserCount", "distantUserCount"})

# field -> (weight, output name). Weights: "row_sessions" = the row's totalSessionCount,
# "row_count" = the row's sessionsCount, "humans" = the group's non-bot Traffic sessions.
_WEIGHTED: dict[str, tuple[str, str]] = {
    "pagesPerSessionPercentage": ("row_sessions", "pagesPerSessionPercentage"),
    "PagesPerSessionPercentage": ("row_sessions", "pagesPerSessionPercentage"),
    "screensPerSessionPercentage": ("row_sessions", "screensPerSessionPercentage"),
    "sessionsWithMetricPercentage": ("row_count", "sessionsWithMetricPercentage"),
    "sessionsWithoutMetricPercentage": ("row_count", "sessionsWithoutMetricPercentage"),
    "averageScrollDepth": ("humans", "averageScrollDepth"),
    "totalTime": ("humans", "totalTime"),
    "activeTime": ("humans", "activeTime"),
}
# Averages Clarity sends as whole seconds in a count-like string.
_WHOLE_SECONDS = frozenset({"totalTime", "activeTime"})
_LIVE_NAME = {"distantUserCount": "distinctUserCount"}
# Blocks only the no-dimension snapshot carries; a breakdown never does.
_SNAPSHOT_ONLY = frozenset(
    {"Browser", "Device", "OS", "Country", "PageTitle", "ReferrerUrl", "PopularPages"}
    | {"PopularScreens"}
)
_BY_LOWER = {name.lower(): name for name in VALID_DIMENSIONS}
_DEFAULT_KEY = {"URL": "Url"}  # how Clarity spells URL in rows

Row = dict[str, Any]
Key = tuple[Any, ...]


class DerivedPayload(list[dict[str, Any]]):
    """A derived answer: Clarity's list of blocks, plus where it came from.

    It is a ``list`` (JSON-serialisable, accepted by ``normalize``) with three attributes:
    ``derived_from`` (the source breakdown's dimensions), ``dimensions`` (this answer's)
    and ``empty_fields`` (fields left null in at least one row because they cannot be
    derived, sorted).
    """

    def __init__(
        self,
        blocks: Iterable[dict[str, Any]],
        *,
        derived_from: tuple[str, ...],
        dimensions: tuple[str, ...],
        empty_fields: tuple[str, ...],
    ) -> None:
        super().__init__(blocks)
        self.derived_from = derived_from
        self.dimensions = dimensions
        self.empty_fields = empty_fields

    @property
    def source(self) -> str:
        """The source breakdown as one label, e.g. ``"Device,OS"``."""
        return ",".join(self.derived_from)

    def __repr__(self) -> str:
        return (
            f"DerivedPayload(dimensions={self.dimensions!r}, derived_from={self.derived_from!r},"
            f" blocks={len(self)})"
        )


def _canonical(names: Sequence[str] | str, what: str) -> tuple[str, ...]:
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    found: list[str] = []
    for name in names:
        canonical = _BY_LOWER.get(str(name).strip().lower())
        if canonical is None:
            raise ClarityRequestError(
                f"{what} names {name!r}, which is not a Clarity dimension; use one of "
                f"{', '.join(VALID_DIMENSIONS)}"
            )
        if canonical in found:
            raise ClarityRequestError(f"{what} names {canonical!r} twice; name each once")
        found.append(canonical)
    return tuple(found)


def validate_roll_up(
    from_dimensions: Sequence[str] | str, to_dimensions: Sequence[str] | str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Check that ``from_dimensions`` can be rolled up to ``to_dimensions``, without data.

    Returns both as canonical dimension names. Raises ``ClarityRequestError`` saying why not
    (unknown or repeated names, a target that is not a subset of the source, or ``URL``
    summed out). Planners use it to tell which breakdowns one call can serve.
    """
    source = _canonical(from_dimensions, "from_dimensions")
    target = _canonical(to_dimensions, "to_dimensions")
    if not source:
        raise ClarityRequestError(
            "from_dimensions is empty: the no-dimension snapshot is already the coarsest answer"
        )
    if len(source) > MAX_DIMENSIONS:
        raise ClarityRequestError(
            f"from_dimensions names {len(source)} dimensions; Clarity breaks down by at most "
            f"{MAX_DIMENSIONS}"
        )
    extra = [d for d in target if d not in source]
    if extra:
        raise ClarityRequestError(
            f"Cannot derive a breakdown by {', '.join(extra)} from one by {', '.join(source)}: "
            "a roll-up can only remove dimensions; request it from Clarity"
        )
    removed = [d for d in source if d not in target]
    if "URL" in removed:
        raise ClarityRequestError(
            "URL cannot be summed out: a session visits several pages, so URL rows overlap and "
            "their sums would over-count sessions. Keep URL in to_dimensions, or request the "
            "breakdown without URL from Clarity"
        )
    bad = [d for d in removed if d not in SESSION_DIMENSIONS]
    if bad:  # pragma: no cover - only URL is not session-level today
        raise ClarityRequestError(f"{', '.join(bad)} is not a session-level dimension")
    return source, target


def _check_blocks(payload: Any, source: tuple[str, ...]) -> list[tuple[str, list[Row]]]:
    if not isinstance(payload, list):
        raise ClarityRequestError(
            "roll_up needs Clarity's answer (a list of metric blocks), "
            f"not {type(payload).__name__}"
        )
    blocks: list[tuple[str, list[Row]]] = []
    for block in payload:
        rows = block.get("information") if isinstance(block, dict) else None
        name = block.get("metricName") if isinstance(block, dict) else None
        if not isinstance(name, str) or not isinstance(rows, list):
            raise ClarityRequestError(
                "roll_up needs Clarity's answer: every block must be "
                '{"metricName": ..., "information": [...]}'
            )
        if name in _SNAPSHOT_ONLY:
            raise ClarityRequestError(
                f"The payload holds the {name!r} block, so it is the no-dimension snapshot, not "
                f"a breakdown by {', '.join(source)}: Clarity may have ignored the requested "
                "dimensions. There is nothing finer to roll up"
            )
        if not all(isinstance(r, dict) for r in rows):
            raise ClarityRequestError(f"Block {name!r} holds a row that is not an object")
        if len(rows) >= ROW_CAP:
            raise ClarityRequestError(
                f"Block {name!r} has {len(rows)} rows, Clarity's cap of {ROW_CAP}: it may "
                "have been cut short, so its sums could be too low. Request the coarser "
                "breakdown from Clarity instead"
            )
        blocks.append((name, rows))
    total = sum(len(rows) for _, rows in blocks)
    if total == ROW_CAP:
        raise ClarityRequestError(
            f"The answer holds exactly {ROW_CAP} rows in all: if Clarity capped the whole "
            "response, later blocks were cut short. Request the coarser breakdown from Clarity"
        )
    return blocks


def _dimension_keys(row: Row, source: tuple[str, ...], block: str) -> dict[str, str]:
    """Canonical dimension -> the key this row spells it with."""
    keys: dict[str, str] = {}
    for key in row:
        canonical = _BY_LOWER.get(key.lower())
        if canonical is not None:
            keys[canonical] = key
    missing = [d for d in source if d not in keys]
    extra = [d for d in keys if d not in source]
    if missing or extra:
        problem = f"lacks {', '.join(missing)}" if missing else f"also has {', '.join(extra)}"
        raise ClarityRequestError(
            f"A {block!r} row {problem}, so the payload is not a breakdown by exactly "
            f"{', '.join(source)}; pass the dimensions it was requested with"
        )
    return keys


def _number(value: Any, field: str) -> float | None:
    """``field``'s value read as the normaliser reads it, or ``None`` when it cannot be.

    A count (``normalize.COUNT_FIELDS``) is read by ``payload_integer``, anything else by
    ``payload_decimal``: a value the typed table would refuse is not summed here either.
    """
    try:
        if _LIVE_NAME.get(field, field) in COUNT_FIELDS:
            return float(payload_integer(value))
        return payload_decimal(value)
    except ValueError:
        return None


def _as_count(value: float) -> str | int:
    number = round(value)
    return str(number) if number else 0


def _as_share(value: float) -> float | int:
    rounded = round(value, 2)
    if rounded <= 0:
        return 0
    if rounded >= 100:
        return 100
    return rounded


def _out_name(field: str) -> str:
    """The live spelling a field is written under in a derived row."""
    if field in _WEIGHTED:
        return _WEIGHTED[field][1]
    return _LIVE_NAME.get(field, field)


class _Accumulator:
    """The sums that make one derived row."""

    def __init__(self) -> None:
        self.fields: dict[str, None] = {}  # output field order
        self.sums: dict[str, float] = {}
        self.weights: dict[str, float] = {}
        self.broken: set[str] = set()
        self.seen: list[set[str]] = []  # fields of each contributing row

    def add(self, row: Row, dims: set[str], humans: float | None) -> None:
        seen: set[str] = set()
        for field, value in row.items():
            if field in dims:
                continue
            out = _out_name(field)
            seen.add(out)
            self.fields.setdefault(out, None)
            number = _number(value, field)
            if field in SUMMED_FIELDS and number is not None:
                self.sums[out] = self.sums.get(out, 0.0) + number
            elif field in _WEIGHTED and number is not None:
                weight = _weight(_WEIGHTED[field][0], row, humans)
                if weight is None:
                    self.broken.add(out)
                    continue
                self.sums[out] = self.sums.get(out, 0.0) + number * weight
                self.weights[out] = self.weights.get(out, 0.0) + weight
            else:
                self.broken.add(out)
        self.seen.append(seen)

    def result(self) -> tuple[Row, set[str]]:
        """The derived row (without dimension keys) and the fields left null in it."""
        # A field some contributing row lacks cannot be summed honestly.
        every = set.intersection(*self.seen) if self.seen else set()
        row: Row = {}
        empty: set[str] = set()
        for out in self.fields:
            if out in self.broken or out not in every or out in UNDERIVABLE_FIELDS:
                row[out] = None
                empty.add(out)
            elif out in self.weights:
                weight = self.weights[out]
                if not weight:
                    row[out] = None
                    empty.add(out)
                    continue
                mean = self.sums[out] / weight
                row[out] = _as_count(mean) if out in _WHOLE_SECONDS else _as_share(mean)
            else:
                row[out] = _as_count(self.sums.get(out, 0.0))
        return row, empty


def _weight(kind: str, row: Row, humans: float | None) -> float | None:
    if kind == "humans":
        return humans
    field = "totalSessionCount" if kind == "row_sessions" else "sessionsCount"
    return _number(row.get(field), field)


def _humans_by_group(
    blocks: list[tuple[str, list[Row]]], source: tuple[str, ...]
) -> dict[Key, float | None]:
    """Non-bot sessions of each source group, from Traffic (None when it cannot be read)."""
    humans: dict[Key, float | None] = {}
    for name, rows in blocks:
        if name != "Traffic":
            continue
        for row in rows:
            keys = _dimension_keys(row, source, name)
            group = tuple(row[keys[d]] for d in source)
            total = _number(row.get("totalSessionCount"), "totalSessionCount")
            bots = _number(row.get("totalBotSessionCount"), "totalBotSessionCount")
            value = None if total is None or bots is None else total - bots
            if group in humans:
                before = humans[group]
                value = None if before is None or value is None else before + value
            humans[group] = value
    return humans


def _order_weight(row: Row) -> float:
    for field in ("totalSessionCount", "sessionsCount"):
        number = _number(row.get(field), field)
        if number is not None:
            return number
    return 0.0


def roll_up(
    payload: Any,
    from_dimensions: Sequence[str] | str,
    to_dimensions: Sequence[str] | str,
) -> DerivedPayload:
    """Turn Clarity's answer broken down by ``from_dimensions`` into the one by ``to_dimensions``.

    :param payload: the parsed JSON of a Clarity answer (a list of metric blocks) requested
        with ``from_dimensions``.
    :param from_dimensions: the dimensions the payload was requested with (names or one
        comma-separated string, matched case-insensitively).
    :param to_dimensions: a subset of them; ``()`` gives the no-dimension totals of the 9
        metric blocks (not the snapshot's 7 extra blocks, which need other data).
    :returns: a :class:`DerivedPayload`: the blocks in the source's order, each row with the
        derived fields then the remaining dimension keys (spelled as in the source, ``Url``
        for URL), heaviest first.
    :raises ClarityRequestError: when the roll-up would not be sound; the message says why.
    """
    source, target = validate_roll_up(from_dimensions, to_dimensions)
    blocks = _check_blocks(payload, source)
    humans = _humans_by_group(blocks, source)
    spelled: dict[str, str] = {}
    empty_fields: set[str] = set()
    out_blocks: list[dict[str, Any]] = []
    for name, rows in blocks:
        groups: dict[Key, _Accumulator] = {}
        for row in rows:
            keys = _dimension_keys(row, source, name)
            for d in target:
                spelled.setdefault(d, keys[d])
            fine = tuple(row[keys[d]] for d in source)
            coarse = tuple(row[keys[d]] for d in target)
            groups.setdefault(coarse, _Accumulator()).add(row, set(keys.values()), humans.get(fine))
        derived: list[tuple[float, Row]] = []
        for coarse, acc in groups.items():
            row, empty = acc.result()
            empty_fields |= empty
            if name in ("ScrollDepth", "EngagementTime"):
                weight = acc.weights.get("averageScrollDepth", acc.weights.get("totalTime", 0.0))
            else:
                weight = _order_weight(row)
            for d, value in zip(target, coarse, strict=True):
                row[spelled.get(d, _DEFAULT_KEY.get(d, d))] = value
            derived.append((weight, row))
        # Heaviest first, like Clarity; sorted() is stable, so ties keep source order.
        ordered = [row for _, row in sorted(derived, key=lambda item: -item[0])]
        out_blocks.append({"metricName": name, "information": ordered})
    return DerivedPayload(
        out_blocks,
        derived_from=source,
        dimensions=target,
        empty_fields=tuple(sorted(empty_fields)),
    )
