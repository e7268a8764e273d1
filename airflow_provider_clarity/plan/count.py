"""The calls a schedule spends: runs in time order, shared snapshots absorbing some."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from airflow_provider_clarity.plan.tasks import TaskPlan


def run_calls(
    tasks: Sequence[TaskPlan], start: datetime, end: datetime
) -> list[tuple[datetime, TaskPlan, TaskPlan | None]]:
    """Every run in ``[start, end)`` as ``(at, task, source)``, in time order: ``source`` is the
    task whose shared snapshot the run reuses (no call), ``None`` when the run spends one.

    Runs of one request at one host are taken in time order; a run less than its
    ``max_snapshot_age`` after the last shareable call reuses it. At equal times the
    unshareable runs go first: the pool's order is not known, so assume the worst.
    """
    out: list[tuple[datetime, TaskPlan, TaskPlan | None]] = []
    groups: dict[Any, list[tuple[datetime, bool, TaskPlan]]] = defaultdict(list)
    for task in tasks:
        key = (task.host, tuple(sorted(task.request.params().items()))) if task.request else task
        for run in task.runs:
            if start <= run < end:
                groups[key].append((run, task.shareable, task))
    for runs in groups.values():
        source: tuple[datetime, TaskPlan] | None = None
        for at, _, task in sorted(runs, key=lambda r: (r[0], r[1])):
            if task.request is not None and source and at - source[0] < task.max_age:
                out.append((at, task, source[1]))
                continue
            out.append((at, task, None))
            if task.shareable:
                source = (at, task)
    return sorted(out, key=lambda r: (r[0], r[1].label))


def day_calls(
    tasks: Sequence[TaskPlan], day: datetime
) -> tuple[dict[str, int], dict[str, tuple[int, str]]]:
    """Calls per task on ``day``, and the runs shared snapshots absorb (and by whom)."""
    calls: dict[str, int] = {t.label: 0 for t in tasks}
    absorbed: dict[str, tuple[int, str]] = {}
    for _, task, source in run_calls(tasks, day, day + timedelta(days=1)):
        if source is None:
            calls[task.label] += 1
        else:
            count, _ = absorbed.get(task.label, (0, ""))
            absorbed[task.label] = (count + 1, source.label)
    return calls, absorbed
