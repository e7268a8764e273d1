"""Each project's busiest day: calls as written, what sharing absorbs, what to derive."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_provider_clarity.connection.settings import QuotaSettings
from airflow_provider_clarity.plan.collect import collect
from airflow_provider_clarity.plan.count import day_calls
from airflow_provider_clarity.plan.rows import RowCounts, dimension_names
from airflow_provider_clarity.plan.schedule import DAYS
from airflow_provider_clarity.plan.suggest import Asker, Need, SuggestedCall, covers, suggest
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
    suggestion: list[SuggestedCall]
    unknown: list[TaskPlan]
    rows: RowCounts

    @property
    def scheduled(self) -> int:
        return sum(self.calls.values()) + sum(n for n, _ in self.absorbed.values())

    @property
    def spent(self) -> int:
        """Calls on the busiest day as written, after what shared snapshots absorb."""
        return sum(self.calls.values())

    @property
    def suggested(self) -> int:
        return sum(call.calls for call in self.suggestion)

    @property
    def fits(self) -> bool:
        return self.spent <= self.settings.capacity


def plan_projects(
    tasks: Sequence[TaskPlan],
    *,
    start: datetime,
    days: int = DAYS,
    rows_of: Callable[[str], RowCounts] | None = None,
) -> list[ProjectPlan]:
    """Group the exports by project and work out each project's busiest day.

    ``rows_of(project_id)``: the rows its breakdowns have had (``rows.kept_rows`` reads the
    kept answers); without it, nothing is measured and only pairs are merged.
    """
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
        askers: dict[tuple[int, frozenset[str]], list[Asker]] = defaultdict(list)
        for task in calling:
            assert task.request is not None
            key = (task.request.num_of_days, frozenset(task.request.dimensions))
            askers[key].append(Asker(task.label, calls[task.label], task.schedule))
        needs = [
            (num_of_days, Need(_table(dims, num_of_days), dims, tuple(who)))
            for (num_of_days, dims), who in askers.items()
        ]
        rows = rows_of(project_id) if rows_of is not None else RowCounts()
        suggestion = suggest(needs, rows)
        templated = [t for t in exports if t.request is None and calls[t.label]]
        if templated:
            who = tuple(Asker(t.label, calls[t.label], t.schedule) for t in templated)
            need = Need("as written", frozenset(), who)
            suggestion.append(SuggestedCall(("(templated requests)",), need.calls, (need,)))
        unknown = [t for t in exports if t.unknown_runs]
        plans.append(
            ProjectPlan(
                project_id,
                settings,
                exports,
                day,
                calls,
                absorbed,
                derivable,
                suggestion,
                unknown,
                rows,
            )
        )
    return plans


def _table(dims: frozenset[str], days: int) -> str:
    return dimension_names(dims) + (f" ({days} days)" if days > 1 else "")


def plan_dags(
    dags: Iterable[Any],
    *,
    start: datetime | None = None,
    rows_of: Callable[[str], RowCounts] | None = None,
) -> tuple[list[ProjectPlan], list[TaskPlan]]:
    """The per-project plans of ``dags`` (and the derive tasks), from ``start`` (the next UTC
    midnight by default), with the row counts ``rows_of`` gives (see ``plan_projects``)."""
    if start is None:
        now = datetime.now(UTC)
        start = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    tasks = collect(dags, start=start)
    return plan_projects(tasks, start=start, rows_of=rows_of), [
        t for t in tasks if t.kind == TaskKind.DERIVE
    ]
