"""Calls still scheduled today: what the scheduler will run, read from the metadata DB.

The api-server's side of ``plan``: which unpaused DAGs hold exports (their
serialized form, as the UI reads them), when the scheduler creates their next runs
(``DagModel.next_dagrun_create_after``, then the DAG's timetable), and which export task
instances of runs already created have not called yet. The counting (shared snapshots
included) is ``plan.count.run_calls``; nothing here calls Clarity or imports a DAG file.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict
from urllib.parse import quote

from airflow_provider_clarity.plan.collect import collect
from airflow_provider_clarity.plan.count import run_calls
from airflow_provider_clarity.plan.schedule import MAX_RUNS, timetable_summary
from airflow_provider_clarity.plan.tasks import TaskKind, TaskPlan
from airflow_provider_clarity.quota import caller_label
from airflow_provider_clarity.version_compat import following_run_info, next_run_info
from airflow_provider_clarity.windows.utc import utc_iso

#: How far ahead runs are read. A UTC day ends within 24 h; a rolling window longer than
#: this is counted only this far (``until`` says so).
HORIZON = timedelta(days=3)
#: Task instance states after which an export may still call (``None``: not scheduled yet).
_UNFINISHED = ("scheduled", "queued", "running", "deferred", "up_for_reschedule", "up_for_retry",
               "restarting")  # fmt: skip


class ScheduledRun(TypedDict):
    """A run the scheduler will create. ``calls`` is 0 when a shared snapshot serves it."""

    at: str
    dag_id: str
    task_id: str
    request: str
    calls: int
    shared_from: str | None
    overdue: bool
    url: str


class PendingCall(TypedDict):
    """An export task instance of a run that exists, which has not called yet."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    state: str
    url: str


class UnknownTask(TypedDict):
    dag_id: str
    task_id: str
    why: str


class ScheduledReport(TypedDict):
    """``scheduled_today`` of a project: at most ``calls`` more before ``until``."""

    until: str
    calls: int
    runs: list[ScheduledRun]
    pending: list[PendingCall]
    unknown: list[UnknownTask]
    hidden_calls: int
    over_by: int


@dataclass(frozen=True)
class Pending:
    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    state: str
    started: datetime | None

    @property
    def caller(self) -> str:
        """The ledger's caller label for this task instance."""
        return caller_label(self)


@dataclass
class Schedule:
    """Every active export's coming runs and pending task instances, as of ``now``."""

    now: datetime
    tasks: list[TaskPlan] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)
    #: The DAGs the user may read (``None``: all). Others' calls are counted, not named.
    readable: frozenset[str] | None = None

    def _shown(self, dag_id: str) -> bool:
        return self.readable is None or dag_id in self.readable

    def projects(self) -> dict[str, TaskPlan]:
        """One export per project that has any: its resolved connection settings."""
        found: dict[str, TaskPlan] = {}
        for task in self.tasks:
            if task.resolved and task.settings is not None:
                found.setdefault(task.project_id, task)
        return found

    def unresolved(self) -> list[UnknownTask]:
        """Exports whose project is not known here (a missing or templated connection)."""
        return [
            UnknownTask(dag_id=t.dag_id, task_id=t.task_id, why=t.note)
            for t in self.tasks
            if not t.resolved and self._shown(t.dag_id)
        ]

    def for_project(
        self,
        project_id: str,
        until: datetime,
        remaining: int,
        recorded: Iterable[tuple[str, datetime]] = (),
        *,
        ui_base: str = "",
    ) -> ScheduledReport:
        """What ``project_id`` will still spend before ``until``; ``recorded`` are the ledger's
        ``(caller, at)`` pairs, so a running task that already called is not counted twice."""
        until = min(until, self.now + HORIZON)  # runs were read that far
        mine = [t for t in self.tasks if t.resolved and t.project_id == project_id]
        runs = [
            ScheduledRun(
                at=utc_iso(at),
                dag_id=task.dag_id,
                task_id=task.task_id,
                request=_request_text(task),
                calls=0 if source else 1,
                shared_from=source.label if source else None,
                overdue=at <= self.now,
                url=dag_url(ui_base, task.dag_id),
            )
            for at, task, source in run_calls(mine, self.now, until)
        ]
        labels = {(t.dag_id, t.task_id) for t in mine}
        called: dict[str, datetime] = {}
        for caller, at in recorded:
            called[caller] = max(at, called.get(caller, at))
        pending = [
            PendingCall(
                dag_id=p.dag_id,
                task_id=p.task_id,
                run_id=p.run_id,
                map_index=p.map_index,
                state=p.state,
                url=task_instance_url(ui_base, p.dag_id, p.run_id, p.task_id, p.map_index),
            )
            for p in self.pending
            if (p.dag_id, p.task_id) in labels and not _has_called(p, called)
        ]
        unknown = [
            UnknownTask(dag_id=t.dag_id, task_id=t.task_id, why=t.note or t.schedule)
            for t in mine
            if t.unknown_runs
        ]
        calls = sum(r["calls"] for r in runs) + len(pending)
        shown_runs = [r for r in runs if self._shown(r["dag_id"])]
        shown_pending = [p for p in pending if self._shown(p["dag_id"])]
        hidden = calls - sum(r["calls"] for r in shown_runs) - len(shown_pending)
        return ScheduledReport(
            until=utc_iso(until),
            calls=calls,
            runs=shown_runs,
            pending=shown_pending,
            unknown=[u for u in unknown if self._shown(u["dag_id"])],
            hidden_calls=hidden,
            over_by=max(0, calls - remaining),
        )


def _request_text(task: TaskPlan) -> str:
    """The request as the ledger records it (``numOfDays=1 dimensions=OS``)."""
    return task.request.describe() if task.request is not None else "(templated)"


def dag_url(ui_base: str, dag_id: str) -> str:
    """The UI's page of a DAG, under ``[api] base_url``'s path."""
    return f"{ui_base}/dags/{quote(dag_id, safe='')}"


def task_instance_url(
    ui_base: str, dag_id: str, run_id: str, task_id: str, map_index: int = -1
) -> str:
    """The UI's page of a task instance (of one mapped instance when ``map_index >= 0``)."""
    url = f"{dag_url(ui_base, dag_id)}/runs/{quote(run_id, safe='')}"
    url += f"/tasks/{quote(task_id, safe='')}"
    return url + (f"/mapped/{map_index}" if map_index >= 0 else "")


def _has_called(p: Pending, called: dict[str, datetime]) -> bool:
    """A running task instance whose current try already has a ledger record has called.

    Any other unfinished state (queued, deferred or rescheduled waiting for the quota, up
    for retry after a failed call) still has its call ahead of it.
    """
    if p.state != "running" or p.caller not in called:
        return False
    return p.started is None or called[p.caller] >= p.started


# ------------------------------------------------------------------ reading the metadata DB

# dag_id -> (dag_hash, the deserialized DAG, or None when it holds no Clarity task). The
# api-server answers requests on several threads: the lock keeps the cache whole.
_DAGS: dict[str, tuple[str, Any]] = {}
_DAGS_LOCK = threading.Lock()


def _clarity_dags(session: Any) -> list[tuple[Any, Any]]:
    """``(DagModel, SerializedDAG)`` of every unpaused, current DAG with a Clarity task.

    A DAG is deserialized once per version (its hash), not on every page load.
    """
    from airflow.models.dag import DagModel
    from airflow.models.serialized_dag import SerializedDagModel
    from sqlalchemy import select

    from airflow_provider_clarity.plan.tasks import task_kind

    models = {
        m.dag_id: m
        for m in session.scalars(
            select(DagModel).where(DagModel.is_paused.is_(False), DagModel.is_stale.is_(False))
        )
    }
    rows = SerializedDagModel.get_latest_serialized_dags(dag_ids=list(models), session=session)
    found = []
    with _DAGS_LOCK:
        for row in rows:
            cached = _DAGS.get(row.dag_id)
            if cached is None or cached[0] != row.dag_hash:
                dag = row.dag
                keep = dag if any(task_kind(t) for t in dag.tasks) else None
                _DAGS[row.dag_id] = cached = (row.dag_hash, keep)
            if cached[1] is not None:
                found.append((models[row.dag_id], cached[1]))
        for gone in set(_DAGS) - set(models):
            del _DAGS[gone]
    return found


def _runs_from_model(models: dict[str, Any], now: datetime, end: datetime) -> Any:  # plan.RunsOf
    """``runs_of`` for ``plan.collect``: the scheduler's next run, then the timetable's."""
    from airflow.timetables.base import TimeRestriction

    def runs_of(dag: Any) -> tuple[list[datetime], bool, str]:
        timetable = dag.timetable
        summary, unknown = timetable_summary(timetable)
        if unknown is None:  # asset-triggered or continuous: nothing to count
            return [], True, summary
        info = next_run_info(timetable, models[dag.dag_id])
        # catchup=True: from a known last run, the timetable's next one (not "the latest").
        restriction = TimeRestriction(dag.start_date, dag.end_date, catchup=True)
        runs: list[datetime] = []
        while info is not None and info.run_after < end and len(runs) < MAX_RUNS:
            runs.append(max(info.run_after.astimezone(UTC), now))  # overdue: as soon as can be
            info = following_run_info(timetable, info, restriction)
        return runs, unknown, summary

    return runs_of


def _pending(session: Any, dags: Sequence[tuple[Any, Any]]) -> list[Pending]:
    """Unfinished export task instances of the queued and running runs of ``dags``."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance as TI
    from sqlalchemy import or_, select

    from airflow_provider_clarity.plan.tasks import task_kind

    exports = {
        (dag.dag_id, t.task_id): kind
        for _, dag in dags
        for t in dag.tasks
        if (kind := task_kind(t)) in (TaskKind.EXPORT, TaskKind.MAPPED)
    }
    if not exports:
        return []
    query = (
        select(TI.dag_id, TI.task_id, TI.run_id, TI.map_index, TI.state, TI.start_date)
        .join(DagRun, (DagRun.dag_id == TI.dag_id) & (DagRun.run_id == TI.run_id))
        .where(
            TI.dag_id.in_({dag_id for dag_id, _ in exports}),
            DagRun.state.in_(("queued", "running")),
            or_(TI.state.is_(None), TI.state.in_(_UNFINISHED)),
        )
        .order_by(TI.dag_id, TI.run_id, TI.task_id, TI.map_index)
    )
    return [
        Pending(dag_id, task_id, run_id, map_index, str(state or "none"), started)
        for dag_id, task_id, run_id, map_index, state, started in session.execute(query)
        # A mapped export not expanded yet has one placeholder for an unknown number of
        # calls: it is listed as unknown instead (``TaskPlan.unknown_runs``).
        if (kind := exports.get((dag_id, task_id)))
        and not (kind == TaskKind.MAPPED and map_index < 0)
    ]


def read_schedule(
    now: datetime, *, session: Any, readable: Iterable[str] | None = None
) -> Schedule:
    """The schedule of every active export from ``now`` to ``now + HORIZON``; only the DAGs
    in ``readable`` (``None``: all) are named, the others' calls are counted."""
    dags = _clarity_dags(session)
    models = {model.dag_id: model for model, _ in dags}
    runs_of = _runs_from_model(models, now, now + HORIZON)
    tasks = collect([dag for _, dag in dags], start=now, runs_of=runs_of)
    exports = [t for t in tasks if t.kind == TaskKind.EXPORT]
    shown = None if readable is None else frozenset(readable)
    return Schedule(now, exports, _pending(session, dags), shown)
