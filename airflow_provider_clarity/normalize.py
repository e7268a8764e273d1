"""Clarity response -> typed tidy rows, as a pandas DataFrame or plain JSON-safe records.

This module is a public contract, schema version ``SCHEMA_VERSION``: warehouse tables are
built on it, and ``airflow_provider_clarity/schema/v1.json`` pins every column and type
(``tests/test_schema_contract.py``). The user guide's "Output schema" page is the full
description; in short:

Rows
    One row per element of each block's ``information`` list, in response order.

Columns, in this order
    1. ``metric``; 2. the dimension columns; 3. the known field columns, web and mobile-app
    (``COLUMNS``): always present, with the same type, whatever the response; 4. unknown
    fields, snake_cased, sorted by name (only those present); 5. the metadata columns
    ``project_id, dimensions, exported_at, window_start, window_end, num_of_days`` that
    were given (the window columns when ``exported_at`` and ``num_of_days`` both are).

Key matching
    Keys are matched to columns ignoring case and non-alphanumeric characters; the live
    spelling wins when one row carries two. Any other key is an unknown field named by its
    snake_case; one that would collide with a known or metadata column gets ``_field``.

Types (DataFrame dtype; value in records)
    strings ``string`` (pyarrow-backed; ``str`` or None); counts ``Int64`` (exact, never
    through float; ``int``); percentages and averages ``float64`` (``float``); times
    ``datetime64[us, UTC]`` (ISO-8601 ``str``). A known field whose value cannot be
    coerced raises ``ClarityResponseError`` naming the metric, field and row.

    Unknown fields are **always** ``string``, whatever their values: a string stays as
    sent, any other JSON value becomes its JSON text (``12`` -> ``"12"``, ``true`` ->
    ``"true"``). Clarity sends counts as strings and zero as the number ``0``, so any
    inference would flip a new field's type between days; text never does. Cast in the
    warehouse once the field is known, or upgrade to a version that knows it.

pandas and pyarrow are imported inside ``to_dataframe`` only; importing this module
or calling ``to_records`` does not load them (DAG files stay cheap to parse).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_clarity.api_facts import ROW_CAP, VALID_DIMENSIONS
from airflow_provider_clarity.exceptions import ClarityResponseError
from airflow_provider_clarity.utils.numbers import payload_decimal, payload_integer
from airflow_provider_clarity.windows.overlap import window_of

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "COLUMNS",
    "METADATA_COLUMNS",
    "SCHEMA_VERSION",
    "block_sizes",
    "payload_problem",
    "to_dataframe",
    "to_records",
]

#: The version of the table's schema; a change to a column or type is a new major version.
SCHEMA_VERSION = "1"

# Column kinds. Each maps to one DataFrame dtype and one record value type.
_STR = "string"
_INT = "int"
_FLOAT = "float"
_TIME = "timestamp"

_DIMENSIONS: tuple[str, ...] = tuple(name.lower() for name in VALID_DIMENSIONS)

# (column, kind, live spelling in Clarity responses) in schema order.
_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("total_session_count", _INT, "totalSessionCount"),
    ("total_bot_session_count", _INT, "totalBotSessionCount"),
    ("distinct_user_count", _INT, "distinctUserCount"),
    ("pages_per_session_percentage", _FLOAT, "pagesPerSessionPercentage"),
    ("average_scroll_depth", _FLOAT, "averageScrollDepth"),
    ("total_time", _INT, "totalTime"),
    ("active_time", _INT, "activeTime"),
    ("sessions_count", _INT, "sessionsCount"),
    ("sessions_with_metric_percentage", _FLOAT, "sessionsWithMetricPercentage"),
    ("sessions_without_metric_percentage", _FLOAT, "sessionsWithoutMetricPercentage"),
    ("pages_views", _INT, "pagesViews"),
    ("sub_total", _INT, "subTotal"),
    ("name", _STR, "name"),
    ("visits_count", _INT, "visitsCount"),
    # Mobile-app projects send these instead of their web twins (pagesViews, ..., url).
    ("screens_views", _INT, "screensViews"),
    ("screens_per_session_percentage", _FLOAT, "screensPerSessionPercentage"),
    ("screen_name", _STR, "screenName"),
)

#: Live spellings of the fields read as counts (``payload_integer``); the rest are measures.
COUNT_FIELDS: frozenset[str] = frozenset(live for _, kind, live in _FIELDS if kind == _INT)

#: The metadata columns in order, mapped to their kind; each is present when given.
METADATA_COLUMNS: dict[str, str] = {
    "project_id": _STR,
    "dimensions": _STR,
    "exported_at": _TIME,
    "window_start": _TIME,
    "window_end": _TIME,
    "num_of_days": _INT,
}

#: The always-present columns in order, mapped to their kind
#: (``string``, ``int``, ``float``); unknown fields and metadata columns follow them.
COLUMNS: dict[str, str] = {
    "metric": _STR,
    **dict.fromkeys(_DIMENSIONS, _STR),
    **{column: kind for column, kind, _ in _FIELDS},
}

_RESERVED = frozenset(COLUMNS) | frozenset(METADATA_COLUMNS)

# Keys exactly as the live service sends them; they win over any other spelling.
_LIVE_KEYS: dict[str, str] = {
    **{live: column for column, _, live in _FIELDS},
    **{name: name.lower() for name in VALID_DIMENSIONS},
    "Os": "os",
    "Url": "url",
    "url": "url",
}

_NON_ALNUM = re.compile(r"[\W_]+")


def _squash(key: str) -> str:
    return _NON_ALNUM.sub("", key).lower()


# Any spelling of a known column, compared after _squash.
_SQUASHED: dict[str, str] = {
    **{_squash(column): column for column in COLUMNS if column != "metric"},
    "distantusercount": "distinct_user_count",  # the vendor page's sample
    "countryregion": "country",  # the vendor page's dimension name
}

_CAMEL_ACRONYM = re.compile(r"([A-Z]+)([A-Z][a-z])")
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")


def _snake_case(key: str) -> str:
    text = _CAMEL_ACRONYM.sub(r"\1_\2", key)
    text = _CAMEL.sub(r"\1_\2", text)
    return _NON_ALNUM.sub("_", text).strip("_").lower() or "field"


def _column_for(key: str) -> str:
    """The column a row key lands in (known column, or snake_case unknown field)."""
    key = str(key)
    column = _SQUASHED.get(_squash(key))
    if column is not None:
        return column
    column = _snake_case(key)
    return f"{column}_field" if column in _RESERVED else column


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(value: Any) -> str:
    return "null" if value is None else f"{type(value).__name__} {_short(value)}"


# --- Coercion of known columns. Each returns the clean value or raises ValueError. ---


def _coerce_str(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return value
    if kind is int or kind is float:
        return str(value)
    raise ValueError


_COERCERS: dict[str, Callable[[Any], Any]] = {
    _INT: payload_integer,
    _FLOAT: payload_decimal,
    _STR: _coerce_str,
}
_EXPECTED = {
    _INT: "an integer within int64; column {!r} is Int64",
    _FLOAT: "a finite number; column {!r} is float64",
    _STR: "a string; column {!r} is string",
}


# --- Unknown fields: always text, so their type never depends on the day's values. ---


def _as_text(values: list[Any]) -> list[Any]:
    return [
        v
        if v is None or type(v) is str
        else None
        if type(v) is float and not math.isfinite(v)
        else json.dumps(v, allow_nan=False, default=str)
        for v in values
    ]


# --- The one mapping from payload to columns, shared by to_dataframe and to_records. ---


def payload_problem(payload: Any) -> str | None:
    """Say how ``payload`` differs from Clarity's shape, or ``None`` when it has that shape.

    The one shape check: the hook uses it to refuse a 200 whose body is not Clarity's
    answer, and the normaliser to refuse what it cannot map. The shape is a JSON array of
    ``{"metricName": str, "information": [row object, ...]}`` blocks.
    """
    if not isinstance(payload, list):
        return (
            "is not a list of metric blocks: expected a JSON array "
            f'[{{"metricName": ..., "information": [...]}}]; got {_describe(payload)}'
        )
    for index, block in enumerate(payload):
        if not isinstance(block, dict):
            return (
                f"has a bad block: block {index} is {_describe(block)} instead of a metric "
                "block (expected an object with 'metricName' and 'information')"
            )
        metric = block.get("metricName")
        if type(metric) is not str:
            return (
                f"has a bad block: block {index} has metricName {_short(metric)}, so it is "
                f"without a 'metricName' string (expected one; its keys are "
                f"{sorted(map(str, block))})"
            )
        rows = block.get("information")
        if not isinstance(rows, list):
            return (
                f"has a bad block: metric {metric!r} (block {index}) has information "
                f"{_describe(rows)}, not a list of rows (expected a list of row objects)"
            )
        for row_index, row in enumerate(rows):
            if type(row) is not dict:
                return (
                    f"has a bad block: metric {metric!r} row {row_index} is {_describe(row)}, "
                    "so 'information' is not a list of rows (expected row objects)"
                )
    return None


def block_sizes(payload: list[dict[str, Any]]) -> tuple[dict[str, int], list[str]]:
    """Rows per metric block, and the blocks at Clarity's row cap (possibly truncated).

    Call it only on a payload ``payload_problem`` accepts.
    """
    rows_per_metric = {block["metricName"]: len(block["information"]) for block in payload}
    truncated = [name for name, rows in rows_per_metric.items() if rows == ROW_CAP]
    return rows_per_metric, truncated


def _merge_row(
    row: dict[str, Any], index: int, block_columns: dict[str, list[Any]], keymap: dict[str, str]
) -> None:
    """Place one row whose keys collide on a column: live spelling first, then key order."""
    size = len(block_columns["metric"])
    chosen: dict[str, tuple[int, Any]] = {}
    for key, value in row.items():
        column = keymap.get(key) or keymap.setdefault(key, _column_for(key))
        if column not in block_columns:
            block_columns[column] = [None] * size
        if value is None:
            continue
        rank = 0 if _LIVE_KEYS.get(key) == column else 1
        previous = chosen.get(column)
        if previous is None or rank < previous[0]:
            chosen[column] = (rank, value)
    for column, (_, value) in chosen.items():
        block_columns[column][index] = value


def _coerce_block_column(
    column: str, kind: str, values: list[Any], metric: str, rows: list[dict[str, Any]]
) -> None:
    coerce = _COERCERS[kind]
    is_int, is_float = kind == _INT, kind == _FLOAT
    for position, value in enumerate(values):
        # Fast paths for the usual values, then the careful coercion.
        if value is None:
            continue
        value_type = type(value)
        if is_int:
            # Up to 18 ASCII digits always fits in int64.
            if value_type is str and len(value) < 19 and value.isdigit() and value.isascii():
                values[position] = int(value)
                continue
        elif is_float:
            if value_type is float and value - value == 0.0:  # finite
                continue
        elif value_type is str:
            continue
        try:
            values[position] = coerce(value)
        except (ValueError, OverflowError):
            keys = [k for k in rows[position] if _column_for(k) == column]
            field = keys[0] if len(keys) == 1 else " / ".join(keys)
            raise ClarityResponseError(
                f"Clarity metric {metric!r} field {field!r} (row {position}) holds "
                f"{_short(value)}, which is not {_EXPECTED[kind].format(column)}. "
                "Clarity may have changed this field's format: keep the raw response and "
                "report it."
            ) from None


def _build_columns(payload: Any) -> tuple[int, dict[str, list[Any]], dict[str, str]]:
    """Map a payload to (row count, column -> Python values, column -> kind), schema-ordered."""
    problem = payload_problem(payload)
    if problem is not None:
        raise ClarityResponseError(f"Clarity response {problem}.")
    columns: dict[str, list[Any]] = {}
    total = 0
    keymap = dict(_LIVE_KEYS)
    for block in payload:
        metric, rows = block["metricName"], block["information"]
        size = len(rows)
        if not size:
            continue
        block_columns: dict[str, list[Any]] = {"metric": [metric] * size}
        for index, row in enumerate(rows):
            for key, value in row.items():
                column = keymap.get(key)
                if column is None:
                    column = keymap[key] = _column_for(key)
                values = block_columns.get(column)
                if values is None:
                    values = block_columns[column] = [None] * size
                if value is not None:
                    if values[index] is None:
                        values[index] = value
                    else:
                        _merge_row(row, index, block_columns, keymap)
                        break
        for column, values in block_columns.items():
            kind = COLUMNS.get(column)
            if kind is not None and column != "metric":
                _coerce_block_column(column, kind, values, metric, rows)
            existing = columns.get(column)
            if existing is None:
                columns[column] = [None] * total + values
            else:
                existing.extend(values)
        total += size
        for existing in columns.values():
            if len(existing) < total:
                existing.extend([None] * size)

    kinds = dict(COLUMNS)
    ordered: dict[str, list[Any]] = {
        column: columns.get(column) or [None] * total for column in COLUMNS
    }
    for column in sorted(set(columns) - set(COLUMNS)):
        kinds[column], ordered[column] = _STR, _as_text(columns[column])
    return total, ordered, kinds


def _check_exported_at(exported_at: datetime | str) -> datetime:
    if isinstance(exported_at, str):
        try:
            moment = datetime.fromisoformat(exported_at)
        except ValueError:
            raise ValueError(f"exported_at {exported_at!r} is not an ISO-8601 timestamp.") from None
    elif isinstance(exported_at, datetime):
        moment = exported_at
    else:
        raise TypeError(
            f"exported_at must be a timezone-aware datetime or ISO-8601 string, "
            f"not {type(exported_at).__name__}."
        )
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            f"exported_at {exported_at!r} has no timezone; pass an aware datetime "
            "(e.g. datetime.now(timezone.utc)) so the snapshot time is unambiguous."
        )
    return moment.astimezone(UTC)


def _check_num_of_days(num_of_days: int | str) -> int:
    try:
        return payload_integer(num_of_days)
    except ValueError:
        raise ValueError(f"num_of_days {num_of_days!r} is not an integer.") from None


def _metadata(
    exported_at: datetime | str | None,
    num_of_days: int | str | None,
    project_id: str | None,
    dimensions: Sequence[str] | str | None,
) -> list[tuple[str, Any]]:
    given: dict[str, Any] = {}
    if project_id is not None:
        given["project_id"] = str(project_id)
    if dimensions is not None:
        given["dimensions"] = dimensions if isinstance(dimensions, str) else ",".join(dimensions)
    if exported_at is not None:
        given["exported_at"] = _check_exported_at(exported_at)
    if num_of_days is not None:
        given["num_of_days"] = _check_num_of_days(num_of_days)
    if exported_at is not None and num_of_days is not None:
        start, end = window_of(given["exported_at"], given["num_of_days"])
        given["window_start"], given["window_end"] = start, end
    return [(name, given[name]) for name in METADATA_COLUMNS if name in given]


def to_records(
    payload: Any,
    *,
    exported_at: datetime | str | None = None,
    num_of_days: int | str | None = None,
    project_id: str | None = None,
    dimensions: Sequence[str] | str | None = None,
) -> list[dict[str, Any]]:
    """Normalise a Clarity response into JSON-safe row dicts (the module docstring's schema).

    Every record has the same keys in schema order. Values are ``str``, ``int``,
    ``float`` or ``None`` (never NaN); times are ISO-8601 UTC strings. pandas is not imported.

    :param payload: the parsed JSON body of ``project-live-insights``.
    :param exported_at: when the snapshot was taken; a timezone-aware datetime or an
        ISO-8601 string with an offset. Added as a column when given.
    :param num_of_days: the request's ``numOfDays``. Added as a column when given; with
        ``exported_at``, also ``window_start`` (``exported_at - num_of_days x 24 h``) and
        ``window_end`` (``exported_at``).
    :param project_id: the Clarity project; added as a column when given.
    :param dimensions: the request's breakdown, e.g. ``["Device", "OS"]`` -> ``"Device,OS"``
        (``""`` for the no-dimension snapshot); added as a column when given.
    :raises ClarityResponseError: the payload is not a list of
        ``{"metricName": str, "information": [object, ...]}`` or a known field holds a
        value that cannot be coerced to its type.
    :raises ValueError: ``exported_at`` is naive or unparseable, or ``num_of_days`` is not
        an integer.
    """
    extra = _metadata(exported_at, num_of_days, project_id, dimensions)
    total, columns, _ = _build_columns(payload)
    names = list(columns)
    lists: list[Sequence[Any]] = list(columns.values())
    for name, value in extra:
        names.append(name)
        lists.append([value.isoformat() if isinstance(value, datetime) else value] * total)
    return [dict(zip(names, row, strict=True)) for row in zip(*lists, strict=True)]


def to_dataframe(
    payload: Any,
    *,
    exported_at: datetime | str | None = None,
    num_of_days: int | str | None = None,
    project_id: str | None = None,
    dimensions: Sequence[str] | str | None = None,
) -> pd.DataFrame:
    """Normalise a Clarity response into a typed pandas DataFrame (the module docstring's schema).

    Holds exactly the same values as ``to_records``, with nulls as ``pd.NA`` (``NaN``
    in float columns); times are ``datetime64[us, UTC]``. The parameters and errors are
    those of ``to_records``.
    """
    import numpy as np
    import pandas as pd

    extra = _metadata(exported_at, num_of_days, project_id, dimensions)
    total, columns, kinds = _build_columns(payload)
    string_dtype = pd.StringDtype("pyarrow")

    def build(kind: str, values: list[Any]) -> Any:
        if kind == _INT:
            # Through object, never float: every int64 value stays exact.
            objects = np.array(values, dtype=object)
            mask = objects == None  # noqa: E711 (elementwise comparison)
            objects[mask] = 0
            return pd.arrays.IntegerArray(objects.astype(np.int64), mask)
        if kind == _FLOAT:
            return np.array(values, dtype=np.float64)
        if kind == _TIME:
            naive = np.datetime64(values[0].replace(tzinfo=None), "us") if values else None
            return pd.DatetimeIndex(np.full(total, naive, dtype="datetime64[us]"), tz="UTC")
        return pd.array(values, dtype=string_dtype)

    data = {column: build(kinds[column], values) for column, values in columns.items()}
    for name, value in extra:
        data[name] = build(METADATA_COLUMNS[name], [value] * total)
    return pd.DataFrame(data, copy=False)
