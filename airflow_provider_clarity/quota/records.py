"""The ledger's records: ``CallRecord``, ``Outcome``, and the stored JSON document.

The data of the quota ledger and its on-disk format, nothing else. The document is
version 2 (version 1, the same without ``degraded_until`` and ``waiting``, still reads) and is
read and written only here::

    {
      "version": 2,
      "project_id": "demo-project",
      "settings": {"daily_limit": 10, "reserve": 0, "window": "utc_day",
                   "rolling_window_seconds": 86400, "reset_margin_seconds": 60.0},
      "exhausted_until": "2025-01-02T00:01:00+00:00" | null,
      "degraded_until": "2025-01-01T06:30:00+00:00" | null,
      "waiting": {"dag_id/task_id/run_id/map_index": "2025-01-01T06:10:00+00:00"},
      "calls": [
        {"id": "3f2c...", "at": "2025-01-01T06:00:01.5+00:00",
         "done_at": "2025-01-01T06:00:02.1+00:00" | null,
         "caller": "dag_id/task_id/run_id/map_index" | "outside-airflow" | any string,
         "outcome": "pending" | "200" | "429" | "500" | "timeout" | "connection_error" | ...,
         "request": "numOfDays=1 dimensions=OS"}
      ]
    }
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from operator import attrgetter
from typing import Any

from airflow_provider_clarity.connection.settings import QuotaSettings
from airflow_provider_clarity.exceptions import ClarityLedgerError
from airflow_provider_clarity.windows.utc import utc_iso

LEDGER_DOCUMENT_VERSION = 2
#: Versions this module reads: 1 had no ``degraded_until``.
READABLE_VERSIONS = (1, 2)
OUTSIDE_AIRFLOW = "outside-airflow"


class Outcome(StrEnum):
    """How a recorded attempt ended, where it was not an HTTP status (stored as ``"200"``...)."""

    PENDING = "pending"
    """Recorded before sending; no answer yet (or the worker died while it was in flight)."""
    TIMEOUT = "timeout"
    """Sent, no answer in time: Clarity may have counted it."""
    CONNECTION_ERROR = "connection_error"
    """Dropped after sending, or the answer broke off: Clarity may have counted it."""
    DNS_ERROR = "dns_error"
    """The host name did not resolve: nothing was sent."""
    CONNECTION_REFUSED = "connection_refused"
    """Nothing accepted the connection: nothing was sent."""
    CONNECT_TIMEOUT = "connect_timeout"
    """No connection within the connect timeout: nothing was sent."""
    TLS_ERROR = "tls_error"
    """The TLS handshake failed (before the request, and its token, left): nothing was sent."""
    NOT_SENT = "not_sent"
    """The request could not be encoded: nothing left this machine."""

    @staticmethod
    def of_status(status: int) -> str:
        """The outcome stored for an HTTP answer: its status code as a string."""
        return str(status)

    @staticmethod
    def is_server_error(outcome: str) -> bool:
        """Whether a stored outcome is an HTTP 5xx answer (Clarity itself failing)."""
        return outcome.isdigit() and outcome >= "500"


#: Outcomes that stop counting once known: a 401 or 403 (refused before Clarity knows the
#: project), and attempts that certainly never reached a server.
UNCHARGED_OUTCOMES = frozenset(
    {
        "401",
        "403",
        Outcome.DNS_ERROR,
        Outcome.CONNECTION_REFUSED,
        Outcome.CONNECT_TIMEOUT,
        Outcome.TLS_ERROR,
        Outcome.NOT_SENT,
    }
)


@dataclass(frozen=True)
class CallRecord:
    """One attempt at a Clarity call, as the ledger keeps it."""

    at: datetime
    caller: str
    request: str = ""
    outcome: str = Outcome.PENDING
    done_at: datetime | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])

    @property
    def charged(self) -> bool:
        """Whether Clarity may count this attempt against the project's quota."""
        return self.outcome not in UNCHARGED_OUTCOMES

    @property
    def last_seen(self) -> datetime:
        """The latest moment the ledger knows of this call: its answer, else its record (an
        answer stored as earlier than the record, by an edit or a skewed clock, never makes the
        call count for less)."""
        done_at = self.done_at
        return done_at if done_at is not None and done_at > self.at else self.at

    def finished(self, outcome: str, at: datetime) -> CallRecord:
        """This record with its outcome filled in."""
        return replace(self, outcome=str(outcome), done_at=at)

    def as_dict(self) -> dict[str, Any]:
        """``id, at, done_at, caller, outcome, request`` with aware datetimes."""
        return {
            "id": self.id,
            "at": self.at,
            "done_at": self.done_at,
            "caller": self.caller,
            "outcome": str(self.outcome),
            "request": self.request,
        }


@dataclass
class LedgerState:
    """The ledger document as read: its calls, oldest first, and the 429 mark."""

    calls: list[CallRecord] = field(default_factory=list)
    exhausted_until: datetime | None = None
    degraded_until: datetime | None = None
    #: Tasks waiting for a call, caller label -> when it first had to wait (queue order).
    waiting: dict[str, datetime] = field(default_factory=dict)
    #: The project the document names, and the settings its last writer used (if stored).
    project_id: str | None = None
    settings: QuotaSettings | None = None


def corrupt_message(key: str, why: str) -> str:
    """The error text for a ledger document that cannot be read."""
    return (
        f"The Clarity quota ledger in Variable {key!r} cannot be read: {why}. Fix it in the "
        "Airflow UI (Admin > Variables), or delete it to start counting from zero (Airflow then "
        "forgets the calls already made today)."
    )


#: The years a stored time may fall in. Anything else is a typo or an attack, and near
#: ``datetime``'s own limits (years 1 and 9999) the window arithmetic would overflow.
EARLIEST_YEAR, LATEST_YEAR = 2000, 2199
_FIRST_MOMENT = datetime(EARLIEST_YEAR, 1, 1, tzinfo=UTC)
_PAST_LAST_MOMENT = datetime(LATEST_YEAR + 1, 1, 1, tzinfo=UTC)
#: The keys a document of each readable version may hold.
_DOCUMENT_KEYS = {
    1: frozenset({"version", "project_id", "settings", "exhausted_until", "calls"}),
    2: frozenset(
        {
            "version",
            "project_id",
            "settings",
            "exhausted_until",
            "degraded_until",
            "waiting",
            "calls",
        }
    ),
}
_BY_TIME = attrgetter("at")
_RECORD_KEYS = frozenset({"id", "at", "done_at", "caller", "outcome", "request"})


class _Unreadable(Exception):
    """Why a document cannot be read; ``read_document`` turns it into the repair message."""


def _parse_time(value: Any, what: str) -> datetime:
    """An ISO time string as an aware UTC datetime (a naive one is taken as UTC)."""
    if type(value) is not str:
        raise _Unreadable(f"{what} is {value!r}, not an ISO time string")
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        elif moment.tzinfo is not UTC:
            moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise _Unreadable(f"{what} is {value!r}, not an ISO time") from None
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        raise _Unreadable(f"{what} is {value!r}, outside the years {EARLIEST_YEAR}-{LATEST_YEAR}")
    return moment


def _optional_time(value: Any, what: str) -> datetime | None:
    return None if value is None else _parse_time(value, what)


def _text(raw: dict[str, Any], name: str, default: str, where: str) -> str:
    """A record's optional string field; an empty one is ``default``."""
    value = raw.get(name, default)
    if type(value) is not str:
        raise _Unreadable(f"{where} has {name!r} {value!r}, not a string")
    return value or default


def _record(raw: Any, index: int) -> CallRecord:
    """One stored call. The fast path takes what the provider writes (every field a string,
    times in UTC within the years); anything else goes through ``_record_checked``, which
    accepts the same records and says why it refuses the others."""
    if type(raw) is dict and raw.keys() <= _RECORD_KEYS:
        record_id = raw.get("id")
        at = raw.get("at")
        done_at = raw.get("done_at")
        caller = raw.get("caller", OUTSIDE_AIRFLOW)
        outcome = raw.get("outcome", Outcome.PENDING)
        request = raw.get("request", "")
        if (
            type(record_id) is str
            and record_id
            and type(at) is str
            and (done_at is None or type(done_at) is str)
            and type(caller) is str
            and type(outcome) is str
            and type(request) is str
        ):
            try:
                at_time = datetime.fromisoformat(at)
                done_time = None if done_at is None else datetime.fromisoformat(done_at)
            except ValueError:
                pass
            else:
                if (
                    at_time.tzinfo is UTC
                    and _FIRST_MOMENT <= at_time < _PAST_LAST_MOMENT
                    and (
                        done_time is None
                        or (
                            done_time.tzinfo is UTC
                            and _FIRST_MOMENT <= done_time < _PAST_LAST_MOMENT
                        )
                    )
                ):
                    # Every field is checked: skip the frozen dataclass's __init__, whose
                    # per-field object.__setattr__ is half the read time of a large ledger.
                    record = object.__new__(CallRecord)
                    record.__dict__.update(
                        at=at_time,
                        caller=caller or OUTSIDE_AIRFLOW,
                        request=request,
                        outcome=outcome or Outcome.PENDING,
                        done_at=done_time,
                        id=record_id,
                    )
                    return record
    return _record_checked(raw, index)


def _record_checked(raw: Any, index: int) -> CallRecord:
    where = f"call #{index + 1}"
    if type(raw) is not dict:
        raise _Unreadable(f"{where} is {_short(raw)}, not a call record (an object)")
    if not raw.keys() <= _RECORD_KEYS:
        unknown = ", ".join(sorted(map(repr, raw.keys() - _RECORD_KEYS)))
        raise _Unreadable(f"{where} has unknown field(s) {unknown}")
    record_id = raw.get("id")
    if type(record_id) is not str or not record_id:
        raise _Unreadable(f"{where} has id {_short(record_id)}, not a non-empty string")
    if "at" not in raw:
        raise _Unreadable(f"{where} has no 'at' time")
    return CallRecord(
        id=record_id,
        at=_parse_time(raw["at"], f"{where}'s 'at'"),
        done_at=_optional_time(raw.get("done_at"), f"{where}'s 'done_at'"),
        caller=_text(raw, "caller", OUTSIDE_AIRFLOW, where),
        outcome=_text(raw, "outcome", str(Outcome.PENDING), where),
        request=_text(raw, "request", "", where),
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _version(data: dict[str, Any]) -> int:
    version = data.get("version", 1)  # version 1 documents written by hand may omit it
    if type(version) is not int:
        raise _Unreadable(f"its 'version' is {_short(version)}, not a whole number")
    if version not in READABLE_VERSIONS:
        raise _Unreadable(
            f"it is version {version!r}, which this provider does not read "
            f"({', '.join(map(str, READABLE_VERSIONS))}); if it is newer, upgrade "
            "airflow-provider-clarity on every worker"
        )
    return version


def _parse(data: Any, *, calls: bool = True) -> LedgerState:
    if data is None or data == {}:
        return LedgerState()
    if type(data) is not dict:
        raise _Unreadable(f"it is {_short(data)}, not a ledger document (a JSON object)")
    version = _version(data)
    unknown = data.keys() - _DOCUMENT_KEYS[version]
    if unknown:
        names = ", ".join(sorted(map(repr, unknown)))
        raise _Unreadable(f"it has key(s) {names} that a version {version} ledger does not")
    if "calls" not in data:
        raise _Unreadable("it has no 'calls' list (a misspelt key?)")
    raw_calls = data["calls"]
    if type(raw_calls) is not list:
        raise _Unreadable(f"its 'calls' is {_short(raw_calls)}, not a list of call records")
    project_id = data.get("project_id")
    if project_id is not None and (type(project_id) is not str or not project_id):
        raise _Unreadable(f"its 'project_id' is {_short(project_id)}, not a project id")
    settings = None
    if "settings" in data:
        try:
            settings = QuotaSettings.from_stored(project_id or "stored", data["settings"])
        except ValueError as err:
            raise _Unreadable(f"its 'settings' make no sense: {err}") from None
    waiting = data.get("waiting", {})
    if type(waiting) is not dict:
        raise _Unreadable(f"its 'waiting' is {_short(waiting)}, not an object")
    records = [_record(raw, index) for index, raw in enumerate(raw_calls)] if calls else []
    records.sort(key=_BY_TIME)
    queue: dict[str, datetime] = {}
    for caller, since in waiting.items():
        if type(caller) is not str:
            raise _Unreadable(f"its 'waiting' has the caller {_short(caller)}, not a string")
        queue[caller] = _parse_time(since, f"the waiting time of {_short(caller)}")
    return LedgerState(
        records,
        _optional_time(data.get("exhausted_until"), "'exhausted_until'"),
        _optional_time(data.get("degraded_until"), "'degraded_until'"),
        queue,
        project_id=project_id,
        settings=settings,
    )


def read_document(data: Any, key: str) -> LedgerState:
    """Parse a stored document (``None`` or ``{}`` for an empty ledger).

    Fails closed: anything this version does not fully understand (an unknown key, a field of
    the wrong type, a time outside the years 2000-2199, settings that make no sense) is an
    error, never read as fewer calls.

    :raises ClarityLedgerError: naming the Variable ``key`` and how to repair it.
    """
    try:
        return _parse(data)
    except _Unreadable as err:
        raise ClarityLedgerError(corrupt_message(key, str(err))) from None


def read_header(data: Any, key: str) -> LedgerState:
    """``read_document`` without reading the calls (``calls`` must still be a list): the
    project, settings, marks and queue of a document, for a view whose every read of the
    calls goes through ``read_document`` anyway.

    :raises ClarityLedgerError: naming the Variable ``key`` and how to repair it.
    """
    try:
        return _parse(data, calls=False)
    except _Unreadable as err:
        raise ClarityLedgerError(corrupt_message(key, str(err))) from None


def write_document(
    state: LedgerState, *, project_id: str, settings: dict[str, Any]
) -> dict[str, Any]:
    """The JSON-ready document (``LEDGER_DOCUMENT_VERSION``) for ``state``."""
    exhausted_until = state.exhausted_until
    degraded_until = state.degraded_until
    return {
        "version": LEDGER_DOCUMENT_VERSION,
        "project_id": project_id,
        "settings": settings,
        "exhausted_until": None if exhausted_until is None else utc_iso(exhausted_until),
        "degraded_until": None if degraded_until is None else utc_iso(degraded_until),
        "waiting": {caller: utc_iso(since) for caller, since in state.waiting.items()},
        "calls": [
            {
                "id": record.id,
                "at": utc_iso(record.at),
                "done_at": None if record.done_at is None else utc_iso(record.done_at),
                "caller": record.caller,
                "outcome": str(record.outcome),
                "request": record.request,
            }
            for record in state.calls
        ],
    }
