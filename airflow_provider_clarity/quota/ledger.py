"""``QuotaLedger``: count one Clarity project's calls inside its quota windows.

Clarity allows 10 Data Export calls per project per day and offers no way to ask how many
are left. The ledger keeps that count itself, in one Airflow Variable per project (see
``store.py``), so every DAG (and every team) sharing a project shares one count.

Rules
    * A call is recorded (outcome ``pending``) *before* the request is sent: a worker that
      dies mid-request still counts it. ``after_call`` fills in the outcome.
    * Every recorded attempt counts, whatever its outcome (Clarity may count failed calls
      and the ledger cannot tell), except a 401 or 403: Clarity refuses those before it
      knows which project to charge, so they stop counting once their outcome is known.
    * A 429 marks the project spent until ``QuotaSettings.reset_after_429``, because calls
      made outside Airflow are invisible to the ledger.
    * ``mark_degraded`` (called when Clarity failed every attempt of a call with a 5xx)
      stops every task from calling for ``degraded_cooldown_seconds``: they wait as for the
      quota instead of each spending their attempts into an outage. The first call after
      the cool-down is a probe: a 5xx on it starts a new cool-down at once (so the probe
      is one attempt, not three), any other answer from Clarity ends the degraded state.
    * When a call stops counting and when a day starts are ``connection/settings.py``'s reset rules.
    * Calls older than ``QuotaSettings.keep_for()`` are pruned on every write. The stored
      ``settings`` are what the last writer used, so ``usage`` can report a project by id.

Concurrency
    Airflow Variables have no compare-and-set, so every read-modify-write (``before_call``,
    ``after_call``, ``wake_at``, ``mark_degraded``) runs under the project's ledger lock
    (``lock.py``), which serialises every process of a host, or of every host sharing
    ``[clarity] ledger_lock_dir``. Where tasks run on several hosts without that, the
    1-slot ``clarity_api`` pool serialises the writers, and every other writer is refused
    before a call (``context.unserialised_writer``). docs/quota.md, "Parallel calls".

Counting only. Storage is ``store.py``, the document ``records.py``, the words
``report.py``; the ledger is the hook's ``CallObserver``, beside the hook, never inside it.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_provider_clarity.connection.settings import (
    DEFAULT_DEGRADED_COOLDOWN_SECONDS,
    QuotaSettings,
    Window,
)
from airflow_provider_clarity.exceptions import ClarityLedgerError, ClarityQuotaExceededError
from airflow_provider_clarity.quota import metrics
from airflow_provider_clarity.quota.context import current_caller, unserialised_writer
from airflow_provider_clarity.quota.lock import LockScope, ledger_lock, lock_scope
from airflow_provider_clarity.quota.records import (
    CallRecord,
    LedgerState,
    Outcome,
    corrupt_message,
    read_document,
    read_header,
    write_document,
)
from airflow_provider_clarity.quota.report import (
    QuotaStatus,
    exceeded_error,
    never_message,
    usage_text,
)
from airflow_provider_clarity.quota.store import (
    DocumentView,
    LedgerStore,
    VariableLedgerStore,
    ledger_key,
)
from airflow_provider_clarity.request import ClarityRequest
from airflow_provider_clarity.windows.utc import utc_text

log = logging.getLogger(__name__)

#: Calls that no longer count kept in the document beyond those that do (newest first): for
#: ``usage``, the quota page and ``last_success``; enough for 100 days of 10 calls.
KEEP_IDLE_CALLS = 1000
#: Waiting tasks kept in the queue (newest first): far more than a project's 10 calls serve.
KEEP_WAITING = 1000


def _utcnow() -> datetime:
    return datetime.now(UTC)


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
    :param reset_margin_seconds: see ``connection/settings.py``; default 60 (utc_day) / 5 (rolling).
    :raises ValueError: on a setting that makes no sense (negative reserve, unknown window...).
    """

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
        degraded_cooldown_seconds: int = DEFAULT_DEGRADED_COOLDOWN_SECONDS,
        lock: LockScope | None = None,
    ) -> None:
        self.settings = QuotaSettings(
            degraded_cooldown_seconds=degraded_cooldown_seconds,
            project_id=project_id,
            daily_limit=daily_limit,
            reserve=reserve,
            window=window,  # type: ignore[arg-type]  # validated into a Window
            rolling_window_seconds=rolling_window_seconds,
            reset_margin_seconds=-1.0 if reset_margin_seconds is None else reset_margin_seconds,
        )
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
        self._lock_scope = lock
        self._store_warm = False
        self._pending: list[str] = []
        #: Calls left right after the last ``after_call``, so a caller needs no second read.
        self.remaining_after_last_call: int | None = None

    @classmethod
    def from_settings(cls, settings: QuotaSettings, **kwargs: Any) -> QuotaLedger:
        """Build the ledger for ``settings``; ``kwargs`` go to the constructor."""
        return cls(
            settings.project_id,
            daily_limit=settings.daily_limit,
            reserve=settings.reserve,
            window=settings.window,
            rolling_window_seconds=settings.rolling_window_seconds,
            reset_margin_seconds=settings.reset_margin_seconds,
            degraded_cooldown_seconds=settings.degraded_cooldown_seconds,
            **kwargs,
        )

    @classmethod
    def from_document(cls, document: dict[str, Any], **kwargs: Any) -> QuotaLedger:
        """A read-only view of a stored ledger document, with the settings it stores.

        ``kwargs`` go to the constructor (``clock`` for a fixed "now").

        :raises ClarityLedgerError: the document's project, settings, marks or queue are not
            readable (``records.read_header``), or it names no project. Its calls are read,
            and refused the same way, by every read of the ledger (``status``, ``usage``...).
        """
        project_id = document.get("project_id") if isinstance(document, dict) else None
        key = ledger_key(project_id) if isinstance(project_id, str) and project_id else "?"
        state = read_header(document, key)
        if state.project_id is None:
            raise ClarityLedgerError(corrupt_message(key, "it names no project ('project_id')"))
        settings = state.settings or QuotaSettings(state.project_id)
        return cls.from_settings(settings, store=DocumentView(document), **kwargs)

    @classmethod
    def for_hook(
        cls, hook: Any, *, caller: str = "", reserve: int | None = None, **kwargs: Any
    ) -> QuotaLedger:
        """Build the ledger for a ClarityHook's connection (its ``quota_settings``).

        ``reserve`` (a task's own) overrides the connection's; ``kwargs`` go to the constructor.
        """
        settings: QuotaSettings = hook.quota_settings
        return cls.from_settings(settings.with_reserve(reserve), caller=caller, **kwargs)

    # ------------------------------------------------------------------ settings, for callers

    @property
    def project_id(self) -> str:
        return self.settings.project_id

    @property
    def daily_limit(self) -> int:
        return self.settings.daily_limit

    @property
    def reserve(self) -> int:
        return self.settings.reserve

    @property
    def window(self) -> Window:
        return self.settings.window

    @property
    def rolling_window_seconds(self) -> int:
        return self.settings.rolling_window_seconds

    @property
    def reset_margin_seconds(self) -> float:
        return self.settings.reset_margin_seconds

    @property
    def capacity(self) -> int:
        """Calls per window that Airflow may spend: ``daily_limit - reserve`` (at least 0)."""
        return self.settings.capacity

    # ------------------------------------------------------------------ public reads

    def now(self) -> datetime:
        """The ledger's current time (aware UTC)."""
        moment = self._clock()
        if moment.tzinfo is None:
            raise ValueError("The ledger's clock must return an aware datetime")
        return moment.astimezone(UTC)

    def status(self) -> QuotaStatus:
        """Everything the ledger knows about the project now, read once."""
        return self._status(self._load(), self.now())

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
            raise ValueError(never_message(self.settings, calls))
        return found

    def wake_at(self, *, floor: timedelta, spacing: timedelta) -> datetime:
        """Queue this caller for a call and say when it should look again.

        Waiters are woken in turn, by their place in the queue (when each first had to wait),
        not all at once: the k-th waiter wakes when k calls will be free, so after a reset
        one freed call wakes one task, not every waiting task to find it taken. A waiter
        beyond the project's capacity wakes ``spacing`` after the one before it. Never sooner
        than ``floor`` from now: Airflow 3.3.2 can fail a task queued again within seconds of
        exiting to wait. The caller leaves the queue when it records a call.

        :raises ValueError: when the reserve leaves Airflow no call, so no reset ever comes.
        """
        if self.capacity < 1:
            raise ValueError(never_message(self.settings, 1))
        caller = self.caller or current_caller()
        with self._writing():
            state = self._load()
            now = self.now()
            state.waiting.setdefault(caller, now)
            queue = sorted(state.waiting, key=lambda c: (state.waiting[c], c))
            place = queue.index(caller) + 1
            calls = min(place, self.capacity)
            reset = self._next_reset(state, now, calls) or now
            wake = max(reset + spacing * max(0, place - self.capacity), now + floor)
            self._save(state, now)
        metrics.waiting(self.project_id, (wake - now).total_seconds())
        log.info(
            "Clarity quota: %s is number %d of %d waiting for a call of project %s; it looks "
            "again at %s.",
            caller,
            place,
            len(queue),
            self.project_id,
            utc_text(wake),
        )
        return wake

    def records(self) -> list[CallRecord]:
        """Every kept call, oldest first."""
        return list(self._load().calls)

    def last_success(self, request: str, *, before: datetime) -> CallRecord | None:
        """The latest kept call for ``request`` (``ClarityRequest.describe()`` text) that
        Clarity answered with 200, made strictly before ``before``; ``None`` if none is kept.

        The ledger keeps ``settings.keep_for()`` (48 h for ``utc_day``): older calls are gone.
        """
        found = [
            r
            for r in self._load().calls
            if r.request == request and r.outcome == Outcome.of_status(200) and r.at < before
        ]
        return max(found, key=lambda r: r.at, default=None)

    def entries(self) -> list[dict[str, Any]]:
        """Every kept call, oldest first: ``id, at, done_at`` (aware datetimes or None),
        ``caller, outcome, request`` (strings)."""
        return [record.as_dict() for record in self.records()]

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
        return usage_text(self.status())

    # ------------------------------------------------------------------ CallObserver

    def before_call(self, request: ClarityRequest | None = None) -> None:
        """Record a call about to be sent; raise instead when no call is left.

        The Variable is written before this returns, so the call counts even if the worker
        dies while the request is in flight.

        :raises ClarityQuotaExceededError: ``source="ledger"``, when no call may be made now.
        """
        with self._writing():
            state = self._load()
            now = self.now()
            if self._available_at(state, now) < 1:
                raise self._exceeded(state, now, 1)
            record = self._new_record(request, now)
            state.calls.append(record)
            state.waiting.pop(record.caller, None)
            self._save(state, now)
        self._pending.append(record.id)
        log.info(
            "Clarity quota: recorded call %d of %d for project %s before sending (%s); "
            "%d left after it",
            sum(self._counts_at(r, now) for r in state.calls),
            self.capacity,
            self.project_id,
            record.request or "request",
            self._available_at(state, now),
        )

    def after_call(self, request: ClarityRequest | None, outcome: str) -> None:
        """Store the outcome of the call recorded by the matching ``before_call``.

        A ``"429"`` marks the project spent until the next reset. Sets
        ``remaining_after_last_call``.
        """
        with self._writing():
            self._record_outcome(request, outcome)

    def _record_outcome(self, request: ClarityRequest | None, outcome: str) -> None:
        state = self._load()
        now = self.now()
        outcome = str(outcome)
        record_id = self._pending.pop() if self._pending else None
        position = next((i for i, r in enumerate(state.calls) if r.id == record_id), None)
        if position is None:
            # No matching record (before_call not used, or the Variable was deleted meanwhile):
            # record the call now, since it did reach the network.
            state.calls.append(self._new_record(request, now))
            position = len(state.calls) - 1
        state.calls[position] = state.calls[position].finished(outcome, now)
        if not state.calls[position].charged:
            metrics.uncharged(self.project_id, outcome)
        if state.degraded_until is not None and state.degraded_until <= now:
            if Outcome.is_server_error(outcome):  # the probe failed: cool down again
                self._start_cooldown(state, now)
            elif outcome.isdigit():  # Clarity answered: it is back
                state.degraded_until = None
                log.info(
                    "Clarity answered %s for project %s: no longer degraded.",
                    outcome,
                    self.project_id,
                )
        if outcome == "429":
            metrics.rate_limited(self.project_id)
            until = self.settings.reset_after_429(now)
            current = state.exhausted_until
            state.exhausted_until = until if current is None else max(current, until)
            log.warning(
                "Clarity answered 429 for project %s with %d of %d calls in the ledger's window: "
                "calls made outside Airflow are invisible to it. The project counts as spent "
                "until %s.",
                self.project_id,
                sum(self._counts_at(r, now) for r in state.calls),
                self.capacity,
                utc_text(state.exhausted_until) if state.exhausted_until else "-",
            )
        self._save(state, now)
        self.remaining_after_last_call = self._available_at(state, now)

    def _new_record(self, request: ClarityRequest | None, now: datetime) -> CallRecord:
        """A pending record of a call by this ledger's caller (the running task by default)."""
        return CallRecord(
            at=now,
            caller=self.caller or current_caller(),
            request=request.describe() if request is not None else "",
        )

    def mark_degraded(self) -> datetime | None:
        """Let no task call for the cool-down: Clarity just failed every attempt with a 5xx.

        Returns the end of the cool-down (``None`` when ``degraded_cooldown_seconds`` is 0).
        """
        with self._writing():
            state = self._load()
            now = self.now()
            until = self._start_cooldown(state, now)
            self._save(state, now)
        return until

    def after_answer(self, answer: Any) -> None:
        """Told by the hook once a call is over: an outage starts the cool-down.

        When Clarity failed every attempt with a 5xx (``answer``, a ``ClarityAnswer``, says
        so), no task (nor direct hook call) calls the project for
        ``degraded_cooldown_seconds``.
        """
        if answer.all_attempts_failed_on_clarity:
            self.mark_degraded()

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the project's ledger lock for one read-check-write (``quota/lock.py``).

        :raises ClarityLedgerError: this process's writes could race another host's
            (``context.unserialised_writer``), or the lock cannot be taken. Nothing was sent.
        """
        if self._lock_scope is None:
            self._lock_scope = lock_scope()
        problem = unserialised_writer(self._lock_scope)
        if problem is not None:
            raise ClarityLedgerError(problem)
        if not self._store_warm and isinstance(self.store, VariableLedgerStore):
            # The first read of a process imports and connects (seconds on a busy worker):
            # do it before taking the lock, so every other writer is not kept waiting.
            self.store.load()
            self._store_warm = True
        with ledger_lock(self.key, scope=self._lock_scope):
            yield

    def _start_cooldown(self, state: LedgerState, now: datetime) -> datetime | None:
        if not self.settings.degraded_cooldown_seconds:
            return None
        until = now + self.settings.degraded_cooldown
        state.degraded_until = (
            until if state.degraded_until is None else max(until, state.degraded_until)
        )
        metrics.degraded(self.project_id)
        log.warning(
            "Clarity failed every attempt with HTTP 5xx for project %s. To save the project's "
            "calls, no task calls it until %s; the first call then is a probe.",
            self.project_id,
            utc_text(state.degraded_until),
        )
        return state.degraded_until

    # ------------------------------------------------------------------ window arithmetic

    def _counts_at(self, record: CallRecord, moment: datetime) -> bool:
        if not record.charged:
            return False
        return self.settings.counts_at(record.last_seen + self.settings.margin, moment)

    def _counter(self, moment: datetime) -> Callable[[CallRecord], bool]:
        """``_counts_at(record, moment)`` for many records, with the window's edge worked out
        once (the same inequality, moved to the other side)."""
        settings = self.settings
        if settings.window is Window.ROLLING:
            edge = moment - settings.margin - settings.window_length
            return lambda record: record.last_seen > edge and record.charged
        edge = settings.day_start(moment) - settings.margin
        return lambda record: record.last_seen >= edge and record.charged

    def _used_at(self, state: LedgerState, moment: datetime) -> int:
        return sum(map(self._counter(moment), state.calls))

    def _available_at(self, state: LedgerState, moment: datetime, used: int | None = None) -> int:
        """Calls free at ``moment``; ``used`` when the caller has already counted them."""
        if state.exhausted_until is not None and moment < state.exhausted_until:
            return 0
        if state.degraded_until is not None and moment < state.degraded_until:
            return 0
        if used is None:
            used = self._used_at(state, moment)
        return max(0, self.capacity - used)

    def _next_reset(self, state: LedgerState, now: datetime, calls: int) -> datetime | None:
        if calls > self.capacity:
            return None
        if self._available_at(state, now) >= calls:
            return now
        # Availability never falls as time passes (a call that stopped counting never counts
        # again), and it only rises when a mark ends, a call leaves the window or a day starts.
        settings = self.settings
        marks = [m for m in (state.exhausted_until, state.degraded_until) if m is not None]
        if settings.window is Window.ROLLING:
            # ``calls`` are free once at most ``capacity - calls`` charged calls still count:
            # from the expiry of the (capacity - calls + 1)-th latest to expire, and once every
            # mark has ended. One partial sort, not a recount per candidate moment.
            keep = self.capacity - calls
            tail = settings.margin + settings.window_length
            expiries = heapq.nlargest(
                keep + 1, (r.last_seen + tail for r in state.calls if r.charged)
            )
            if len(expiries) > keep:
                marks.append(expiries[keep])
            return max(marks, default=None)
        # A UTC day: at most four moments to try, each one linear pass.
        first = settings.next_day_start(now)
        candidates = {*marks, first, settings.next_day_start(first)}
        for moment in sorted(c for c in candidates if c > now):
            if self._available_at(state, moment) >= calls:
                return moment
        return None  # unreachable: the second day start empties the window

    def _status(self, state: LedgerState, now: datetime) -> QuotaStatus:
        counts = self._counter(now)
        counted: list[CallRecord] = []
        earlier: list[CallRecord] = []
        for record in state.calls:
            (counted if counts(record) else earlier).append(record)
        return QuotaStatus(
            settings=self.settings,
            key=self.key,
            now=now,
            counted=tuple(counted),
            earlier=tuple(earlier),
            remaining=self._available_at(state, now, len(counted)),
            next_reset=self._next_reset(state, now, 1),
            exhausted_until=state.exhausted_until,
            degraded_until=state.degraded_until,
        )

    def _exceeded(self, state: LedgerState, now: datetime, calls: int) -> ClarityQuotaExceededError:
        status = self._status(state, now)
        reset = status.next_reset if calls == 1 else self._next_reset(state, now, calls)
        return exceeded_error(status, calls, reset)

    # ------------------------------------------------------------------ persistence

    def _load(self) -> LedgerState:
        return read_document(self.store.load(), self.key)

    def _save(self, state: LedgerState, now: datetime) -> None:
        """Prune, then write the whole document.

        Pruned: calls older than ``settings.keep_for()``, then all but the newest
        ``KEEP_IDLE_CALLS`` of the calls that no longer count (a call that stopped counting
        never counts again, so no window needs them), and waiters beyond the newest
        ``KEEP_WAITING``. A document the provider writes stays bounded whatever the window.
        """
        oldest_kept = now - self.settings.keep_for()
        counts = self._counter(now)
        calls = [r for r in state.calls if r.last_seen >= oldest_kept]
        idle = [i for i, r in enumerate(calls) if not counts(r)]
        if len(idle) > KEEP_IDLE_CALLS:
            idle.sort(key=lambda i: calls[i].at)
            dropped = set(idle[:-KEEP_IDLE_CALLS])
            calls = [r for i, r in enumerate(calls) if i not in dropped]
        state.calls = calls
        if state.exhausted_until is not None and state.exhausted_until <= now:
            state.exhausted_until = None
        # A waiter that never came back (cleared, killed, skipped) leaves the queue in time.
        waiting = {c: t for c, t in state.waiting.items() if t >= oldest_kept}
        if len(waiting) > KEEP_WAITING:
            queue = sorted(waiting.items(), key=lambda item: (item[1], item[0]))
            waiting = dict(queue[-KEEP_WAITING:])
        state.waiting = waiting
        self.store.save(
            write_document(state, project_id=self.project_id, settings=self.settings.to_json())
        )
        spent = sum(map(counts, state.calls))
        left = self._available_at(state, now, spent)
        metrics.ledger_changed(self.project_id, spent=spent, remaining=left)
