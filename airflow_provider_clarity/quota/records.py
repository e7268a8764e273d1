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
from typing import Any

from airflow_provider_clarity.exceptions import ClarityError
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
        """The latest moment the ledger knows of this call: its answer, else its record."""
        return self.done_at or self.at

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


def corrupt_message(key: str, why: str) -> str:
    """The error text for a ledger document that cannot be read."""
    return (
        f"The Clarity quota ledger in Variable {key!r} cannot be read: {why}. Fix it in the "
        "Airflow UI (Admin > Variables), or delete it to start counting from zero (Airflow then "
        "forgets the calls already made today)."
    )


def _parse_time(value: Any, key: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError as err:
        raise ClarityError(corrupt_message(key, f"{value!r} is not an ISO time")) from err
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def read_document(data: Any, key: str) -> LedgerState:
    """Parse a stored document (``None`` or ``{}`` for an empty ledger).

    :raises ClarityError: naming the Variable and how to repair it.
    """
    data = data or {}
    if not isinstance(data, dict) or not isinstance(data.get("calls", []), list):
        raise ClarityError(corrupt_message(key, "it is not a ledger document"))
    version = data.get("version", 1)
    if version not in READABLE_VERSIONS:
        raise ClarityError(
            corrupt_message(
                key,
                f"it is version {version!r}, newer than this provider reads "
                f"({', '.join(map(str, READABLE_VERSIONS))}); upgrade airflow-provider-clarity "
                "on every worker",
            )
        )
    calls: list[CallRecord] = []
    for raw in data.get("calls", []):
        if not isinstance(raw, dict) or "at" not in raw:
            raise ClarityError(corrupt_message(key, f"{raw!r} is not a call record"))
        done_at = raw.get("done_at")
        calls.append(
            CallRecord(
                id=str(raw.get("id") or uuid.uuid4().hex[:16]),
                at=_parse_time(raw["at"], key),
                done_at=None if done_at is None else _parse_time(done_at, key),
                caller=str(raw.get("caller") or OUTSIDE_AIRFLOW),
                outcome=str(raw.get("outcome") or Outcome.PENDING),
                request=str(raw.get("request") or ""),
            )
        )
    calls.sort(key=lambda record: record.at)
    exhausted = data.get("exhausted_until")
    degraded = data.get("degraded_until")
    waiting = data.get("waiting") or {}
    if not isinstance(waiting, dict):
        raise ClarityError(corrupt_message(key, "'waiting' is not an object"))
    return LedgerState(
        calls,
        None if exhausted is None else _parse_time(exhausted, key),
        None if degraded is None else _parse_time(degraded, key),
        {str(caller): _parse_time(since, key) for caller, since in waiting.items()},
    )


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
