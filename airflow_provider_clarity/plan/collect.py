"""Every Clarity task of some DAGs, with its runs, project and request."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from airflow_provider_clarity.connection.settings import DEFAULT_CONN_ID
from airflow_provider_clarity.operators._arguments import is_literal
from airflow_provider_clarity.plan.connections import executor_is_one_host, resolve, shareable
from airflow_provider_clarity.plan.schedule import DAYS, runs_between
from airflow_provider_clarity.plan.tasks import TaskKind, TaskPlan, task_kind
from airflow_provider_clarity.request import ClarityRequest

RunsOf = Callable[[Any], tuple[list[datetime], bool, str]]


def collect(
    dags: Iterable[Any], *, start: datetime, days: int = DAYS, runs_of: RunsOf | None = None
) -> list[TaskPlan]:
    """Every Clarity task of ``dags``, with its runs in ``[start, start + days)``.

    ``runs_of(dag)`` replaces the schedule arithmetic: ``(runs, others unknown, schedule)``.
    The api-server passes one that starts from the scheduler's next run in the metadata DB.
    """
    one_host = executor_is_one_host()
    hooks: dict[str, Any] = {}
    found: list[TaskPlan] = []
    for dag in sorted(dags, key=lambda d: d.dag_id):
        kinds = {t.task_id: task_kind(t) for t in dag.tasks}
        clarity = [t for t in dag.tasks if kinds[t.task_id] in (TaskKind.EXPORT, TaskKind.DERIVE)]
        mapped = [t for t in dag.tasks if kinds[t.task_id] == TaskKind.MAPPED]
        for operator in mapped:  # one call per mapped instance: known only at run time
            task = TaskPlan(dag.dag_id, operator.task_id, TaskKind.EXPORT, "mapped (.expand)")
            task.unknown_runs, task.note = True, "mapped: its calls are known only when it runs"
            conn_id = operator.partial_kwargs.get("clarity_conn_id") or DEFAULT_CONN_ID
            resolve(task, SimpleNamespace(clarity_conn_id=conn_id, max_snapshot_age=None), hooks)
            found.append(task)
        if not clarity:
            continue
        runs, unknown, schedule = (runs_of or (lambda d: runs_between(d, start, days)))(dag)
        for operator in clarity:
            task = TaskPlan(dag.dag_id, operator.task_id, TaskKind.DERIVE, schedule, runs, unknown)
            if kinds[operator.task_id] == TaskKind.EXPORT:
                task.kind = TaskKind.EXPORT
                resolve(task, operator, hooks)
                if is_literal(operator.num_of_days) and is_literal(operator.dimensions):
                    task.request = ClarityRequest.build(operator.num_of_days, operator.dimensions)
                task.shareable, why = shareable(operator, one_host)
                task.note = "; ".join(n for n in (task.note, why) if n)
            found.append(task)
    return found
