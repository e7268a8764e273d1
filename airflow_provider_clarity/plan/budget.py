"""Each project's busiest day: calls as written, what sharing absorbs, what to derive."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_provider_clarity.connection.settings import QuotaSettings
from airflow_provider_clarity.plan.collect import collect
from airflow_provider_clarity.plan.count import day_calls
from airflow_provider_clarity.plan.schedule import DAYS
from airflow_provider_clarity.plan.suggest import covers, suggest
from airflow_provider_clarity.plan.tasks import TaskKind, TaskPlan


@dataclass
class ProjectPlan:
    """One project's day: what the DAGs spend as written, and what they could spend."""

    project_id: str
    settings: QuotaSettings
    tasks: list[TaskPlan]
    day: datetime
    calls: dict[str, int]  # task label -> calls on the busiest day
    absorbed: dict[str, tuple[int, str]]  # task label -> (runs absorbed, by which task)
    derivable: list[tuple[TaskPlan, TaskPlan]]  # (target, source)
    suggestion: list[tuple[tuple[str, ...], int, list[str]]]  # (source dims, calls, tables)
    unknown: list[TaskPlan]

    @property
    def scheduled(self) -> int:
        return sum(self.calls.values()) + sum(n for n, _ in self.absorbed.values())

    @property
    def spent(self) -> int:
        """Calls on the busiest day as written, after what shared snapshots absorb."""
        return sum(self.calls.values())

    @property
    def suggested(self) -> int:
        return sum(calls for _, calls, _ in self.suggestion)

    @property
    def fits(self) -> bool:
        return self.spent <= self.settings.capacity


def plan_projects(
    tasks: Sequence[TaskPlan], *, start: datetime, days: int = DAYS
) -> list[ProjectPlan]:
    """Group the exports by project and work out each project's busiest day."""
    by_project: dict[str, list[TaskPlan]] = defaultdict(list)
    for task in tasks:
        if task.kind == TaskKind.EXPORT:
            by_project[task.project_id].append(task)
    plans: list[ProjectPlan] = []
    for project_id, exports in sorted(by_project.items()):
        settings = next(t.settings for t in exports if t.settings is not None)
        days_calls = [
            (start + timedelta(days=n), *day_calls(exports, start + timedelta(days=n)))
            for n in range(days)
        ]
        day, calls, absorbed = max(
            days_calls, key=lambda d: (sum(d[1].values()), -d[0].timestamp())
        )
        calling = [t for t in exports if t.request is not None and calls[t.label]]
        derivable = [
            (target, source)
            for target in calling
            for source in calling
            if target.request
            and source.request
            and target.request.num_of_days == source.request.num_of_days
            and set(target.request.dimensions) != set(source.request.dimensions)
            and covers(frozenset(source.request.dimensions), frozenset(target.request.dimensions))
        ]
        needs: dict[tuple[int, frozenset[str]], int] = defaultdict(int)
        for task in calling:
            assert task.request is not None
            key = (task.request.num_of_days, frozenset(task.request.dimensions))
            needs[key] += calls[task.label]
        suggestion = suggest(needs)
        templated = sum(calls[t.label] for t in exports if t.request is None)
        if templated:
            suggestion.append((("(templated requests)",), templated, ["as written"]))
        unknown = [t for t in exports if t.unknown_runs]
        plans.append(
            ProjectPlan(
                project_id, settings, exports, day, calls, absorbed, derivable, suggestion, unknown
            )
        )
    return plans


def plan_dags(
    dags: Iterable[Any], *, start: datetime | None = None
) -> tuple[list[ProjectPlan], list[TaskPlan]]:
    """The per-project plans of ``dags`` (and the derive tasks), from ``start`` (the next UTC
    midnight by default)."""
    if start is None:
        now = datetime.now(UTC)
        start = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    tasks = collect(dags, start=start)
    return plan_projects(tasks, start=start), [t for t in tasks if t.kind == TaskKind.DERIVE]
