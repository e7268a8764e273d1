"""Ledger documents that are wrong or hostile: every one the reader does not fully understand
fails closed (no call, the repair message), never reads as fewer calls, never a traceback."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_clarity.exceptions import ClarityLedgerError, ClarityQuotaExceededError
from airflow_provider_clarity.quota import MemoryLedgerStore, QuotaLedger
from airflow_provider_clarity.quota.records import LedgerState, read_document
from tests.quota.fixtures import T0, Clock, os_request

KEY = "clarity_quota__demo-project"
REPAIR = "delete it to start counting from zero"


def _call(**fields: Any) -> dict[str, Any]:
    record = {
        "id": "a1",
        "at": (T0 - timedelta(hours=1)).isoformat(),
        "done_at": (T0 - timedelta(hours=1) + timedelta(seconds=2)).isoformat(),
        "caller": "etl/export/run1/-1",
        "outcome": "200",
        "request": "numOfDays=1 dimensions=OS",
    }
    record.update(fields)
    return record


def _document(**top: Any) -> dict[str, Any]:
    """A valid version 2 document with one call today, with ``top`` keys replaced."""
    document: dict[str, Any] = {
        "version": 2,
        "project_id": "demo-project",
        "settings": {
            "daily_limit": 10,
            "reserve": 0,
            "window": "utc_day",
            "rolling_window_seconds": 86400,
            "reset_margin_seconds": 60.0,
            "degraded_cooldown_seconds": 1800,
        },
        "exhausted_until": None,
        "degraded_until": None,
        "waiting": {},
        "calls": [_call()],
    }
    document.update(top)
    return document


def _without(name: str) -> dict[str, Any]:
    document = _document()
    del document[name]
    return document


def _settings(**fields: Any) -> dict[str, Any]:
    return _document(settings={**_document()["settings"], **fields})


def _record(**fields: Any) -> dict[str, Any]:
    return _document(calls=[_call(), _call(**{"id": "b2", **fields})])


def _record_without(name: str) -> dict[str, Any]:
    call = _call(id="b2")
    del call[name]
    return _document(calls=[_call(), call])


HOSTILE: dict[str, Any] = {
    # the document itself
    "a misspelt 'calls' key": {**_without("calls"), "call": [_call()]},
    "no 'calls' beside other keys": _without("calls"),
    "an unknown top-level key": _document(owner="me"),
    "a version 1 document with a waiting queue": _document(version=1),
    "a list": [_call()],
    "a number": 0,
    "false": False,
    "an empty string": "",
    "version true": _document(version=True),
    "version as a string": _document(version="2"),
    "version as a float": _document(version=2.0),
    "a version from the future": _document(version=3),
    "'calls' an object": _document(calls={"a1": _call()}),
    "'waiting' a list": _document(waiting=[]),
    "a waiter whose time is a number": _document(waiting={"a/b/c/-1": 1741946400}),
    "project_id a number": _document(project_id=5),
    "project_id empty": _document(project_id=""),
    "exhausted_until not a time": _document(exhausted_until="never"),
    "degraded_until in year 9999": _document(degraded_until="9999-12-31T23:59:59+00:00"),
    # the calls
    "a call that is a number": _document(calls=[_call(), 1]),
    "a call that is a list": _document(calls=[["a1", T0.isoformat()]]),
    "a call without an id": _record_without("id"),
    "a call without a time": _record_without("at"),
    "a call whose id is a number": _record(id=7),
    "a call with an empty id": _record(id=""),
    "a call with an unknown field": _record(cost=0),
    "a call time that is a number": _record(at=20250314),
    "a call time that is not a time": _record(at="yesterday"),
    "a call in year 9999": _record(at="9999-12-31T23:59:59+00:00"),
    "a call in year 0001": _record(at="0001-01-01T00:00:00+00:00"),
    "a call whose offset overflows": _record(at="9999-12-31T23:59:59-05:00"),
    "a call in 1999": _record(at="1999-12-31T23:59:59+00:00"),
    "an answer time that is a number": _record(done_at=1.5),
    "an outcome that is a number": _record(outcome=200),
    "a caller that is a list": _record(caller=["etl"]),
    "a request that is null": _record(request=None),
    # the stored settings
    "settings a list": _document(settings=[]),
    "settings a string": _document(settings="utc_day"),
    "an unknown setting": _settings(limit=1000),
    "a NaN limit": _settings(daily_limit=float("nan")),
    "an infinite margin": _settings(reset_margin_seconds=float("inf")),
    "a NaN margin": _settings(reset_margin_seconds=float("nan")),
    "a negative margin": _settings(reset_margin_seconds=-1),
    "a margin of a thousand years": _settings(reset_margin_seconds=3.2e10),
    "a negative limit": _settings(daily_limit=-1),
    "a zero limit": _settings(daily_limit=0),
    "a limit as a string": _settings(daily_limit="10"),
    "a limit of true": _settings(daily_limit=True),
    "a fractional limit": _settings(daily_limit=10.5),
    "a negative reserve": _settings(reserve=-3),
    "an unknown window": _settings(window="weekly"),
    "a window that is a number": _settings(window=1),
    "a zero rolling window": _settings(rolling_window_seconds=0),
    "a rolling window of 30,000 years": _settings(rolling_window_seconds=10**12),
    "a cool-down as a float": _settings(degraded_cooldown_seconds=1.5),
}


def _stored(document: Any) -> str:
    """The exact stored text (NaN included), to show nothing was written."""
    return json.dumps(document, sort_keys=True)


def _assert_repair_message(err: pytest.ExceptionInfo[ClarityLedgerError]) -> None:
    message = str(err.value)
    assert f"Variable {KEY!r}" in message
    assert REPAIR in message and "Admin > Variables" in message


@pytest.mark.parametrize("document", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_document_refuses_the_call_and_records_nothing(document: Any, make) -> None:
    store = MemoryLedgerStore(document)
    before = _stored(store.data)
    ledger = make(store=store)

    with pytest.raises(ClarityLedgerError) as err:
        ledger.before_call(os_request())

    _assert_repair_message(err)
    assert _stored(store.data) == before, "no call is recorded in a document it cannot read"
    for read in (ledger.status, ledger.usage, ledger.remaining, ledger.check, ledger.entries):
        with pytest.raises(ClarityLedgerError):
            read()


@pytest.mark.parametrize("document", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_document_is_refused_by_the_reports_too(document: Any, clock: Clock) -> None:
    with pytest.raises(ClarityLedgerError, match=REPAIR):
        QuotaLedger.from_document(document, clock=clock).usage()
    with pytest.raises(ClarityLedgerError, match=REPAIR):
        read_document(document, KEY)


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(None, id="nothing stored"),
        pytest.param({}, id="an empty object"),
    ],
)
def test_an_empty_document_is_an_empty_ledger(document: Any, make) -> None:
    ledger = make(store=MemoryLedgerStore(document))
    assert ledger.remaining() == 10
    ledger.before_call(os_request())
    assert ledger.remaining() == 9


def test_a_version_1_document_still_reads(clock: Clock) -> None:
    document = _document(version=1, settings={"daily_limit": 10, "reserve": 1, "window": "utc_day"})
    del document["waiting"], document["degraded_until"]

    ledger = QuotaLedger.from_document(document, clock=clock)

    assert (ledger.reserve, ledger.remaining()) == (1, 8)
    assert [e["outcome"] for e in ledger.entries()] == ["200"]


def test_a_document_the_ledger_wrote_reads_back_whole(make, store) -> None:
    rolling = {"window": "rolling", "rolling_window_seconds": 3600}
    ledger = make(**rolling)
    ledger.before_call(os_request())
    ledger.after_call(os_request(), "429")
    make(caller="waiting/task/run/-1", **rolling).wake_at(floor=timedelta(0), spacing=timedelta(0))
    written = store.data

    state = read_document(written, KEY)

    assert [r.outcome for r in state.calls] == ["429"]
    assert state.exhausted_until is not None and list(state.waiting) == ["waiting/task/run/-1"]
    assert state.settings is not None and state.settings.rolling_window_seconds == 3600
    assert QuotaLedger.from_document(written).rolling_window_seconds == 3600


# ------------------------------------------------------------------ fuzzing

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["2025-03-14T09:00:00+00:00", "9999-12-31T23:59:59-05:00", "utc_day"])
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)  # fmt: skip


def _replace_at(document: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    """``document`` with the field at ``path`` (keys and list indexes) set to ``value``."""
    changed = copy.deepcopy(document)
    target: Any = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed


_PATHS = [
    *[[name] for name in _document()],
    *[["settings", name] for name in _document()["settings"]],
    *[["calls", 0, name] for name in _call()],
    ["calls", 0],
    ["waiting", "a/b/c/-1"],
    ["settings", "extra"],
    ["calls", 0, "extra"],
]
_near_valid = st.builds(
    _replace_at, st.just(_document()), st.sampled_from(_PATHS), _json
)  # a valid document with one field replaced by any JSON value


def _read_or_refuse(document: Any, clock: Callable[[], Any]) -> None:
    """A document either reads into a state the ledger can use, or is refused as a ledger
    error; no other exception escapes, whatever the document."""
    try:
        state = read_document(document, KEY)
    except ClarityLedgerError:
        return
    assert isinstance(state, LedgerState)
    if isinstance(document, dict) and document.get("project_id"):
        QuotaLedger.from_document(document, clock=clock).usage()
    ledger = QuotaLedger("demo-project", store=MemoryLedgerStore(document), clock=clock)
    ledger.usage()
    try:
        ledger.before_call(os_request())
    except ClarityQuotaExceededError:
        return
    ledger.after_call(os_request(), "200")


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(_json)
def test_any_json_value_reads_as_a_ledger_or_fails_closed(value: Any) -> None:
    _read_or_refuse(value, Clock())


@FUZZ
@given(_near_valid)
def test_a_valid_document_with_any_field_replaced_reads_or_fails_closed(document: Any) -> None:
    _read_or_refuse(document, Clock())
