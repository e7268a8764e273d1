"""The per-project quota ledger: who spent which of Clarity's 10 daily calls, and when.

Clarity allows 10 Data Export calls per project per day and offers no way to ask how many
are left. ``QuotaLedger`` keeps that count itself, in one Airflow Variable per project,
so every DAG (and every team) sharing a project shares one count.

Storage
    Variable key ``clarity_quota__<project_id>`` (see ``ledger_key``), JSON::

        {
          "version": 1,
          "project_id": "demo-project",
          "settings": {"daily_limit": 10, "reserve": 0, "window": "utc_day",
                       "rolling_window_seconds": 86400, "reset_margin_seconds": 60.0},
          "exhausted_until": "2025-01-02T00:01:00+00:00" | null,
          "calls": [
            {"id": "3f2c...", "at": "2025-01-01T06:00:01.5+00:00",
             "done_at": "2025-01-01T06:00:02.1+00:00" | null,
             "caller": "dag_id/task_id/run_id/map_index" | "outside-airflow" | any string,
             "outcome": "pending" | "200" | "429" | "500" | "timeout" | "connection_error" | ...,
             "request": "numOfDays=1 dimensions=OS"}
          ]
        }

    Calls older than 48 hours (or the rolling window plus margin, when longer) are pruned
    on every write. ``settings`` is what the last writer used, so ``usage`` can report a
    project by id alone.

Rules
    * A call is recorded (outcome ``pending``) *before* the request is sent: a worker that
      dies mid-request still counts it. ``after_call`` fills in the outcome.
    * Every recorded attempt counts, whatever its outcome (Clarity may count failed calls
      and the ledger cannot tell), except a 401 or 403: Clarity refuses those before it
      knows which project to charge, so they stop counting once their outcome is known.
    * A 429 marks the project spent until the next reset, because calls made outside
      Airflow are invisible to the ledger. ``utc_day``: the next midnight (plus margin).
      ``rolling``: 429 time + window + margin, the earliest moment at which every call
      Clarity could have counted has certainly left the window.
    * ``reset_margin_seconds`` (default 60 s for ``utc_day``, 5 s for ``rolling``) keeps the
      ledger from declaring a reset before Clarity agrees: the ledger's clock may differ
      from Clarity's, and a request reaches Clarity after it was recorded. A call counts
      from its record time until ``(done_at or at) + margin`` has left the window, and a
      new UTC day starts for the ledger ``margin`` seconds after midnight.

Concurrency
    Airflow Variables have no compare-and-set, so the read-modify-write in
    ``before_call``/``after_call`` is only safe when every task calling the API runs in
    one 1-slot pool, :data:`DEFAULT_POOL` (``airflow pools set clarity_api 1 "Clarity API"``).
    A waiting (rescheduled or deferred) task holds no slot. If a user moves a task to
    another pool, tasks may overlap: two can both see the last free call and both spend
    it, and the later write can drop the other's record (the ledger then undercounts).
    Clarity answers the extra call with 429, the ledger marks the project spent and tasks
    wait for the reset. ``warn_if_unsafe_pool`` logs a warning for such tasks.

Usage report (outside any task; reads the metadata DB like the ``airflow`` CLI does)::

    python -m airflow_provider_clarity.quota usage <conn_id | project_id>
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import os
import re
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_clarity.exceptions import ClarityError, ClarityQuotaExceededError

if TYPE_CHECKING:
    from airflow_provider_clarity.hooks.clarity import ClarityRequest

log = logging.getLogger(__name__)

DEFAULT_POOL = "clarity_api"
"""The 1-slot pool every API-calling task should run in; it serialises the ledger's writes."""

VARIABLE_PREFIX = "clarity_quota__"
WINDOWS = ("utc_day", "rolling")
DEFAULT_RESET_MARGIN_SECONDS = {"utc_day": 60.0, "rolling": 5.0}
OUTSIDE_AIRFLOW = "outside-airflow"
PENDING = "pending"
KEEP_AT_LEAST = timedelta(hours=48)
SCHEMA_VERSION = 1

_SAFE_KEY = re.compile(r"[^A-Za-z0-9_.-]")
_MAX_KEY_LENGTH = 200  # Airflow allows 250; leave room for the prefix and a hash.
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S UTC"


def ledger_key(project_id: str) -> str:
    """Return the Variable key holding ``project_id``'s ledger: ``clarity_quota__<project_id>``.

    Characters outside ``[A-Za-z0-9_.-]`` become ``_``, and then a short hash of the original
    id is appended, so two ids that differ only in such characters never share a key.
    """
    project_id = str(project_id)
    safe = _SAFE_KEY.sub("_", project_id)
    if safe != project_id or len(safe) > _MAX_KEY_LENGTH or not safe:
        digest = hashlib.sha256(project_id.encode()).hexdigest()[:8]
        safe = f"{safe[:_MAX_KEY_LENGTH]}_{digest}"
    return f"{VARIABLE_PREFIX}{safe}"


# --------------------------------------------------------------------------- storage


class LedgerStore(Protocol):
    """Where a ledger's JSON document lives. ``load`` returns ``None`` when nothing is stored."""

    def load(self) -> dict[str, Any] | None: ...

    def save(self, data: dict[str, Any]) -> None: ...


class MemoryLedgerStore:
    """A ledger store in a Python dict, for tests and dry runs. ``data`` is the stored document."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data: dict[str, Any] | None = copy.deepcopy(data)

    def load(self) -> dict[str, Any] | None:
        return copy.deepcopy(self.data)

    def save(self, data: dict[str, Any]) -> None:
        self.data = copy.deepcopy(data)


def _in_task() -> bool:
    """Whether this process is a Task SDK task (or DAG-parsing/trigger) runner."""
    return hasattr(sys.modules.get("airflow.sdk.execution_time.task_runner"), "SUPERVISOR_COMMS")


class VariableLedgerStore:
    """The default store: one Airflow Variable holding the ledger as JSON.

    Inside a task it goes through ``airflow.sdk.Variable`` (the Execution API). Outside a task
    ``airflow.sdk.Variable`` cannot see the metadata DB (``get`` silently returns the default),
    so this store then uses the core ``airflow.models.Variable``, which reads the secrets
    backends and the metadata DB, as the ``airflow variables`` CLI does.
    """

    def __init__(self, key: str, *, description: str | None = None) -> None:
        self.key = key
        self.description = description

    def load(self) -> dict[str, Any] | None:
        if _in_task():
            from airflow.sdk import SecretCache, Variable

            # With [secrets] use_cache on, a cached copy could be minutes old: never count from it.
            SecretCache.invalidate_variable(self.key)
            raw = Variable.get(self.key, default=None)
        else:
            from airflow.models.variable import Variable as CoreVariable

            raw = CoreVariable.get(self.key, default_var=None)
        if raw is None:
            return None
        try:
            data = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError as err:
            raise ClarityError(_corrupt_message(self.key, "it is not valid JSON")) from err
        if not isinstance(data, dict):
            raise ClarityError(_corrupt_message(self.key, "it is not a JSON object"))
        return data

    def save(self, data: dict[str, Any]) -> None:
        if _in_task():
            from airflow.sdk import Variable

            Variable.set(self.key, data, description=self.description, serialize_json=True)
        else:
            from airflow.models.variable import Variable as CoreVariable

            CoreVariable.set(self.key, data, description=self.description, serialize_json=True)


def _corrupt_message(key: str, why: str) -> str:
    return (
        f"The Clarity quota ledger in Variable {key!r} cannot be read: {why}. Fix it in the "
        "Airflow UI (Admin > Variables), or delete it to start counting from zero (Airflow then "
        "forgets the calls already made today)."
    )


# --------------------------------------------------------------------------- helpers


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _parse_time(value: Any, key: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError as err:
        raise ClarityError(_corrupt_message(key, f"{value!r} is not an ISO time")) from err
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _fmt(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime(_TIME_FORMAT)


def _midnight(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def caller_label(ti: Any) -> str:
    """``dag_id/task_id/run_id/map_index`` of a task instance: who a ledger entry is for."""
    map_index = getattr(ti, "map_index", -1)
    return f"{ti.dag_id}/{ti.task_id}/{ti.run_id}/{-1 if map_index is None else map_index}"


def current_caller(default: str = OUTSIDE_AIRFLOW) -> str:
    """Return ``caller_label`` of the running task instance, else ``default``."""
    try:
        from airflow.sdk import get_current_context

        return caller_label(get_current_context()["ti"])
    except Exception:  # no task is running: a script, the CLI, a unit test
        return default


def warn_if_unsafe_pool(task: Any, *, pool: str = DEFAULT_POOL) -> bool:
    """Warn (and return ``False``) when ``task`` does not run in the ledger's serialising pool.

    Only the pool's name can be checked cheaply; its slot count is not visible from a task,
    so a ``clarity_api`` pool with more than one slot goes unnoticed.
    """
    task_pool = getattr(task, "pool", None)
    if task_pool == pool:
        return True
    log.warning(
        "Task %s runs in pool %r, not %r. The Clarity quota ledger is only race-free when every "
        "task calling the Clarity API runs in one pool with 1 slot: two tasks elsewhere can both "
        "see the last free call and both spend it (Clarity then answers 429). Create the pool "
        'with `airflow pools set %s 1 "Clarity API calls"` and leave the task\'s pool at its '
        "default. Ignore this if all your Clarity tasks share another 1-slot pool.",
        getattr(task, "task_id", task),
        task_pool,
        pool,
        pool,
    )
    return False


def missing_pool_note(pool: str = DEFAULT_POOL) -> str | None:
    """Say how to create ``pool`` when the metadata DB shows it does not exist; else ``None``.

    Airflow never schedules a task whose pool is missing, and its DAG processor does not warn
    about it either: the task just stays "scheduled". This is advice for places that can read
    the metadata DB (the API server testing a connection, the CLI). Where the DB cannot be
    read (a task, a unit test without a DB) it returns ``None`` rather than guess.
    """
    if _in_task():
        return None
    try:
        from airflow.models.pool import Pool

        if Pool.get_pool(pool) is not None:
            return None
    except Exception:
        return None
    return (
        f"Note: the pool '{pool}' does not exist, so Clarity export tasks will stay 'scheduled' "
        f'and never run. Create it with `airflow pools set {pool} 1 "Clarity API calls"` '
        "(or Admin > Pools in the UI)."
    )


class _QuotaSettings(Protocol):
    """What ``QuotaLedger.for_hook`` reads from a ClarityHook (the connection's fields)."""

    @property
    def project_id(self) -> str: ...

    @property
    def daily_limit(self) -> int: ...

    @property
    def reserve(self) -> int: ...

    @property
    def quota_window(self) -> str: ...

    @property
    def rolling_window_seconds(self) -> int: ...


# --------------------------------------------------------------------------- the ledger


# Refused before Clarity knows the project: an invalid/expired token, or one for another project.
_UNCHARGED_OUTCOMES = frozenset({"401", "403"})


class QuotaLedger:
    """Count one Clarity project's API calls in a shared, persistent ledger.

    It is the hook's ``CallObserver``: pass it as ``hook.get_live_insights(observer=ledger)``
    and every HTTP attempt (retries too) is recorded before it is sent.

    :param project_id: the Clarity project; the ledger key derives from it.
    :param daily_limit: calls Clarity allows per window (10).
    :param reserve: calls Airflow leaves unspent for people and tools outside Airflow.
    :param window: ``"utc_day"`` (resets 00:00 UTC) or ``"rolling"``.
    :param rolling_window_seconds: length of the rolling window.
    :param caller: who is calling, for the report; default: the running task
        (``dag_id/task_id/run_id/map_index``) or ``"outside-airflow"``.
    :param store: where the ledger lives; default: the Variable ``ledger_key``.
    :param clock: returns the current aware UTC time; for tests.
    :param reset_margin_seconds: see the module docstring; default 60 (utc_day) / 5 (rolling).
    :raises ValueError: on a setting that makes no sense (negative reserve, unknown window...).
    """

    VARIABLE_PREFIX = VARIABLE_PREFIX

    def __init__(
        self,
        project_id: str,
        *,
        daily_limit: int = 10,
        reserve: int = 0,
        window: str = "utc_day",
        rolling_window_seconds: int = 86400,
        caller: str = "",
        store: LedgerStore | None = None,
        clock: Callable[[], datetime] | None = None,
        reset_margin_seconds: float | None = None,
    ) -> None:
        if not str(project_id):
            raise ValueError("project_id must not be empty")
        if window not in WINDOWS:
            raise ValueError(f"Unknown quota window {window!r}; use one of {', '.join(WINDOWS)}")
        if int(daily_limit) < 1:
            raise ValueError(f"daily_limit must be at least 1, got {daily_limit!r}")
        if int(reserve) < 0:
            raise ValueError(f"reserve must be 0 or more, got {reserve!r}")
        if int(rolling_window_seconds) < 1:
            raise ValueError(
                f"rolling_window_seconds must be at least 1, got {rolling_window_seconds!r}"
            )
        if reset_margin_seconds is None:
            reset_margin_seconds = DEFAULT_RESET_MARGIN_SECONDS[window]
        if float(reset_margin_seconds) < 0:
            raise ValueError(f"reset_margin_seconds must be 0 or more, got {reset_margin_seconds}")
        self.project_id = str(project_id)
        self.daily_limit = int(daily_limit)
        self.reserve = int(reserve)
        self.window = window
        self.rolling_window_seconds = int(rolling_window_seconds)
        self.reset_margin_seconds = float(reset_margin_seconds)
        self.caller = caller
        self.key = ledger_key(self.project_id)
        self.store: LedgerStore = (
            store
            if store is not None
            else VariableLedgerStore(
                self.key,
                description=(
                    f"Clarity API calls of project {self.project_id} (airflow-provider-clarity "
                    "quota ledger; written by tasks, do not edit while they run)"
                ),
            )
        )
        self._clock = clock or _utcnow
        self._pending: list[str] = []

    @classmethod
    def for_hook(
        cls, hook: _QuotaSettings, *, caller: str = "", reserve: int | None = None, **kwargs: Any
    ) -> QuotaLedger:
        """Build the ledger for a ClarityHook's connection.

        ``reserve`` (a task's own) overrides the connection's; ``kwargs`` go to the constructor.
        """
        return cls(
            hook.project_id,
            daily_limit=hook.daily_limit,
            reserve=hook.reserve if reserve is None else reserve,
            window=hook.quota_window,
            rolling_window_seconds=hook.rolling_window_seconds,
            caller=caller,
            **kwargs,
        )

    # ------------------------------------------------------------------ public reads

    @property
    def capacity(self) -> int:
        """Calls per window that Airflow may spend: ``daily_limit - reserve`` (at least 0)."""
        return max(0, self.daily_limit - self.reserve)

    def now(self) -> datetime:
        """The ledger's current time (aware UTC)."""
        moment = self._clock()
        if moment.tzinfo is None:
            raise ValueError("The ledger's clock must return an aware datetime")
        return moment.astimezone(UTC)

    def remaining(self) -> int:
        """Calls Airflow may still make now: capacity minus calls in the window; 0 after a 429."""
        return self._available_at(self._load(), self.now())

    def next_reset(self, calls: int = 1) -> datetime:
        """When at least ``calls`` calls will be available (now, if they already are).

        Assumes nobody makes another call meanwhile.

        :raises ValueError: when ``calls`` exceeds the capacity, so that moment never comes.
        """
        found = self._next_reset(self._load(), self.now(), calls)
        if found is None:
            raise ValueError(self._never_message(calls))
        return found

    def entries(self) -> list[dict[str, Any]]:
        """Every kept call, oldest first: ``id, at, done_at`` (aware datetimes or None),
        ``caller, outcome, request`` (strings)."""
        return [dict(entry) for entry in self._load()["calls"]]

    def check(self, calls: int = 1) -> None:
        """Raise unless at least ``calls`` calls may be made now.

        :raises ClarityQuotaExceededError: ``source="ledger"``, ``reset_at`` = when they will be
            available, or ``None`` when never (``calls`` exceeds ``daily_limit - reserve``).
        """
        state = self._load()
        now = self.now()
        if self._available_at(state, now) < calls:
            raise self._exceeded(state, now, calls)

    def usage(self) -> str:
        """A readable report: settings, used, remaining, next reset, and who spent what."""
        state = self._load()
        now = self.now()
        counted = [e for e in state["calls"] if self._counts_at(e, now)]
        earlier = [e for e in state["calls"] if not self._counts_at(e, now)]
        exhausted_until = state["exhausted_until"]
        remaining = self._available_at(state, now)
        next_reset = self._next_reset(state, now, 1)
        lines = [
            f"Clarity quota for project {self.project_id!r} (Variable {self.key})",
            f"  now:        {_fmt(now)}",
            f"  window:     {self._describe_window(now)}",
            f"  limit:      {self.daily_limit} calls, reserve {self.reserve} "
            f"-> {self.capacity} for Airflow",
            f"  used:       {len(counted)} in this window",
            f"  remaining:  {remaining}",
        ]
        if exhausted_until is not None and exhausted_until > now:
            until = _fmt(exhausted_until)
            lines.append(f"  exhausted:  Clarity answered 429; counted as spent until {until}")
        if next_reset is None:
            lines.append("  next call:  never (the reserve keeps every call for people outside)")
        else:
            lines.append(f"  next call:  {'now' if next_reset <= now else _fmt(next_reset)}")
        lines.append("Calls in this window, by caller:" if counted else "No calls in this window.")
        lines.extend(self._by_caller(counted))
        if earlier:
            lines.append(f"Earlier calls (kept {self._keep_for()}), by caller:")
            lines.extend(self._by_caller(earlier))
        return "\n".join(lines)

    # ------------------------------------------------------------------ CallObserver

    def before_call(self, request: ClarityRequest | None = None) -> None:
        """Record a call about to be sent; raise instead when no call is left.

        The Variable is written before this returns, so the call counts even if the worker
        dies while the request is in flight.

        :raises ClarityQuotaExceededError: ``source="ledger"``, when no call may be made now.
        """
        state = self._load()
        now = self.now()
        if self._available_at(state, now) < 1:
            raise self._exceeded(state, now, 1)
        entry = self._new_entry(request, now)
        state["calls"].append(entry)
        self._save(state, now)
        self._pending.append(entry["id"])
        log.info(
            "Clarity quota: recorded call %d of %d for project %s before sending (%s); "
            "%d left after it",
            sum(self._counts_at(e, now) for e in state["calls"]),
            self.capacity,
            self.project_id,
            entry["request"] or "request",
            self._available_at(state, now),
        )

    def after_call(self, request: ClarityRequest | None, outcome: str) -> None:
        """Store the outcome of the call recorded by the matching ``before_call``.

        A ``"429"`` marks the project spent until the next reset.
        """
        state = self._load()
        now = self.now()
        outcome = str(outcome)
        entry_id = self._pending.pop() if self._pending else None
        entry = next((e for e in state["calls"] if e["id"] == entry_id), None)
        if entry is None:
            # No matching record (before_call not used, or the Variable was deleted meanwhile):
            # record the call now, since it did reach the network.
            entry = self._new_entry(request, now)
            state["calls"].append(entry)
        entry["outcome"] = outcome
        entry["done_at"] = now
        if outcome == "429":
            until = self._reset_after_429(now)
            current = state["exhausted_until"]
            state["exhausted_until"] = until if current is None else max(current, until)
            log.warning(
                "Clarity answered 429 for project %s with %d of %d calls in the ledger's window: "
                "calls made outside Airflow are invisible to it. The project counts as spent "
                "until %s.",
                self.project_id,
                sum(self._counts_at(e, now) for e in state["calls"]),
                self.capacity,
                _fmt(state["exhausted_until"]),
            )
        self._save(state, now)

    def _new_entry(self, request: ClarityRequest | None, now: datetime) -> dict[str, Any]:
        return {
            "id": uuid.uuid4().hex[:16],
            "at": now,
            "done_at": None,
            "caller": self.caller or current_caller(),
            "outcome": PENDING,
            "request": _describe(request),
        }

    # ------------------------------------------------------------------ window arithmetic

    @property
    def _margin(self) -> timedelta:
        return timedelta(seconds=self.reset_margin_seconds)

    @property
    def _window(self) -> timedelta:
        return timedelta(seconds=self.rolling_window_seconds)

    def _end(self, entry: dict[str, Any]) -> datetime:
        """The latest time Clarity may have counted this call (its own clock, give or take)."""
        done_at: datetime | None = entry["done_at"]
        return (done_at or entry["at"]) + self._margin

    def _day_start(self, moment: datetime) -> datetime:
        """Start of the ledger's UTC day at ``moment``; it begins ``margin`` after midnight."""
        return _midnight(moment - self._margin)

    def _counts_at(self, entry: dict[str, Any], moment: datetime) -> bool:
        if entry["outcome"] in _UNCHARGED_OUTCOMES:
            return False
        if self.window == "rolling":
            return moment < self._end(entry) + self._window
        return self._end(entry) >= self._day_start(moment)

    def _available_at(self, state: dict[str, Any], moment: datetime) -> int:
        exhausted_until: datetime | None = state["exhausted_until"]
        if exhausted_until is not None and moment < exhausted_until:
            return 0
        used = sum(1 for e in state["calls"] if self._counts_at(e, moment))
        return max(0, self.capacity - used)

    def _next_reset(self, state: dict[str, Any], now: datetime, calls: int) -> datetime | None:
        if calls > self.capacity:
            return None
        if self._available_at(state, now) >= calls:
            return now
        # Availability only changes when a call leaves the window, a day starts or a 429 mark
        # ends: try those moments in order.
        candidates: set[datetime] = set()
        if state["exhausted_until"] is not None:
            candidates.add(state["exhausted_until"])
        if self.window == "rolling":
            candidates.update(self._end(e) + self._window for e in state["calls"])
        else:
            first = self._day_start(now) + timedelta(days=1) + self._margin
            candidates.update({first, first + timedelta(days=1)})
        for moment in sorted(c for c in candidates if c > now):
            if self._available_at(state, moment) >= calls:
                return moment
        return None  # unreachable: the last candidate empties the window

    def _reset_after_429(self, now: datetime) -> datetime:
        if self.window == "rolling":
            # Clarity may have counted calls up to now that the ledger never saw; only once
            # a whole window has passed is a free call certain.
            return now + self._window + self._margin
        return self._day_start(now) + timedelta(days=1) + self._margin

    def _keep_for(self) -> str:
        keep = self._keep()
        hours = keep.total_seconds() / 3600
        return f"{hours:g} h"

    def _keep(self) -> timedelta:
        if self.window == "rolling":
            return max(KEEP_AT_LEAST, self._window + 2 * self._margin)
        return KEEP_AT_LEAST

    def _describe_window(self, now: datetime) -> str:
        margin = f"{self.reset_margin_seconds:g} s"
        if self.window == "rolling":
            return f"rolling {self.rolling_window_seconds} s (+{margin} margin)"
        return (
            f"utc_day, resets 00:00 UTC (+{margin} margin); "
            f"this window began {_fmt(self._day_start(now) + self._margin)}"
        )

    # ------------------------------------------------------------------ messages

    def _exceeded(
        self, state: dict[str, Any], now: datetime, calls: int
    ) -> ClarityQuotaExceededError:
        reset_at = self._next_reset(state, now, calls)
        counted = [e for e in state["calls"] if self._counts_at(e, now)]
        top = Counter(e["caller"] for e in counted).most_common(3)
        spent_by = ", ".join(f"{caller} ({n})" for caller, n in top) or "nobody in Airflow"
        parts = [
            f"Clarity quota for project {self.project_id!r}: {calls} call(s) needed, "
            f"{self._available_at(state, now)} left.",
            f"{len(counted)} of {self.capacity} calls available to Airflow are used in the "
            f"current {self.window} window (limit {self.daily_limit}, reserve {self.reserve}); "
            f"spent by {spent_by}.",
        ]
        exhausted_until = state["exhausted_until"]
        if exhausted_until is not None and exhausted_until > now:
            parts.append(
                "Clarity answered 429, so calls made outside Airflow used the rest; the project "
                f"counts as spent until {_fmt(exhausted_until)}."
            )
        if reset_at is None:
            parts.append(self._never_message(calls))
        else:
            parts.append(f"Enough calls are available again at {_fmt(reset_at)}.")
        parts.append(f"Details: python -m airflow_provider_clarity.quota usage {self.project_id}")
        return ClarityQuotaExceededError(" ".join(parts), reset_at=reset_at, source="ledger")

    def _never_message(self, calls: int) -> str:
        return (
            f"{calls} call(s) can never be available for project {self.project_id!r}: daily_limit "
            f"{self.daily_limit} minus reserve {self.reserve} leaves {self.capacity} for Airflow. "
            "Lower the reserve or the number of calls needed."
        )

    @staticmethod
    def _by_caller(entries: Sequence[dict[str, Any]]) -> list[str]:
        groups: dict[str, list[dict[str, Any]]] = {}
        for entry in entries:
            groups.setdefault(entry["caller"], []).append(entry)
        lines = []
        for caller, calls in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])):
            lines.append(f"  {caller}: {len(calls)} call(s)")
            for e in calls:
                request = f"  {e['request']}" if e["request"] else ""
                lines.append(f"    {_fmt(e['at'])}  {e['outcome']}{request}")
        return lines

    # ------------------------------------------------------------------ persistence

    def _load(self) -> dict[str, Any]:
        """Read the stored document into a state with parsed times."""
        data = self.store.load() or {}
        if not isinstance(data, dict) or not isinstance(data.get("calls", []), list):
            raise ClarityError(_corrupt_message(self.key, "it is not a ledger document"))
        calls: list[dict[str, Any]] = []
        for raw in data.get("calls", []):
            if not isinstance(raw, dict) or "at" not in raw:
                raise ClarityError(_corrupt_message(self.key, f"{raw!r} is not a call record"))
            done_at = raw.get("done_at")
            calls.append(
                {
                    "id": str(raw.get("id") or uuid.uuid4().hex[:16]),
                    "at": _parse_time(raw["at"], self.key),
                    "done_at": None if done_at is None else _parse_time(done_at, self.key),
                    "caller": str(raw.get("caller") or OUTSIDE_AIRFLOW),
                    "outcome": str(raw.get("outcome") or PENDING),
                    "request": str(raw.get("request") or ""),
                }
            )
        calls.sort(key=lambda e: e["at"])
        exhausted = data.get("exhausted_until")
        return {
            "calls": calls,
            "exhausted_until": None if exhausted is None else _parse_time(exhausted, self.key),
        }

    def _save(self, state: dict[str, Any], now: datetime) -> None:
        """Prune, then write the whole document."""
        oldest_kept = now - self._keep()
        calls = [e for e in state["calls"] if (e["done_at"] or e["at"]) >= oldest_kept]
        exhausted_until = state["exhausted_until"]
        if exhausted_until is not None and exhausted_until <= now:
            exhausted_until = None
        state["calls"] = calls
        state["exhausted_until"] = exhausted_until
        self.store.save(
            {
                "version": SCHEMA_VERSION,
                "project_id": self.project_id,
                "settings": self._settings(),
                "exhausted_until": None if exhausted_until is None else _iso(exhausted_until),
                "calls": [
                    {
                        **e,
                        "at": _iso(e["at"]),
                        "done_at": None if e["done_at"] is None else _iso(e["done_at"]),
                    }
                    for e in calls
                ],
            }
        )

    def _settings(self) -> dict[str, Any]:
        return {
            "daily_limit": self.daily_limit,
            "reserve": self.reserve,
            "window": self.window,
            "rolling_window_seconds": self.rolling_window_seconds,
            "reset_margin_seconds": self.reset_margin_seconds,
        }


def _describe(request: Any) -> str:
    describe = getattr(request, "describe", None)
    return str(describe()) if callable(describe) else ""


# --------------------------------------------------------------------------- CLI


def _ledger_for(target: str) -> tuple[QuotaLedger, str]:
    """The ledger for a connection id, else for a project id with its last stored settings."""
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        from airflow_provider_clarity.hooks.clarity import ClarityHook

        hook = ClarityHook(clarity_conn_id=target)
        return QuotaLedger.for_hook(hook), f"connection {target!r}"
    except AirflowNotFoundException:
        pass
    store = VariableLedgerStore(ledger_key(target))
    stored = (store.load() or {}).get("settings") or {}
    settings = {
        k: stored[k]
        for k in ("daily_limit", "reserve", "window", "rolling_window_seconds")
        if k in stored
    }
    if "reset_margin_seconds" in stored:
        settings["reset_margin_seconds"] = stored["reset_margin_seconds"]
    source = "settings stored by the last task" if settings else "default settings"
    return QuotaLedger(target, store=store, **settings), f"project id, {source}"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m airflow_provider_clarity.quota usage <conn_id | project_id>``."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_clarity.quota",
        description="Show how much of a Clarity project's daily API quota Airflow has spent.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    usage = commands.add_parser("usage", help="print who spent which calls, and what is left")
    usage.add_argument("target", help="a clarity connection id, or a Clarity project id")
    args = parser.parse_args(argv)

    # Outside a task the Task SDK reads connections from env vars and secrets backends only;
    # this makes it read the metadata DB too, as the scheduler and the airflow CLI do.
    os.environ.setdefault("_AIRFLOW_PROCESS_CONTEXT", "server")
    ledger, source = _ledger_for(args.target)
    print(ledger.usage())
    print(f"(resolved {args.target!r} as {source})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
