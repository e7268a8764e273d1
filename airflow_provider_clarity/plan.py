"""The day's budget, checked before it runs: Clarity calls per project, read from the DAGs.

``python -m airflow_provider_clarity.plan [DAGS_FOLDER]`` (or ``airflow clarity plan``)
loads the DAGs with a ``DagBag``, finds every ``ClarityExportOperator`` and
``ClarityDeriveOperator``, resolves each export's project offline (the connection's extras,
else the project its token names; no Clarity call, the token is never printed) and prints,
per project:

- each export's calls on the busiest UTC day of the coming week, from its DAG's schedule
  (cron, timedelta, ``@daily``...; ``None`` runs only when triggered: 0 scheduled;
  asset-triggered and continuous DAGs: unknown);
- the daily limit minus the reserve (the calls Airflow may spend);
- the runs shared snapshots absorb: the same request less than ``max_snapshot_age`` after
  a run whose raw answer other workers can read (``shared.py``);
- the breakdowns derivable from another task's answer (``derive.validate_roll_up``);
- a suggested plan with fewer calls: as few calls as cover every breakdown, the rest
  derived with ``ClarityDeriveOperator``.

The exit status is 1 when a project's calls as written (after what sharing absorbs, which
needs no change to the DAGs) exceed its budget; the suggestion does not count. 2 when a
DAG file does not import. So a DAG repository's CI can run it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from airflow_provider_clarity.derive import validate_roll_up
from airflow_provider_clarity.exceptions import ClarityError
from airflow_provider_clarity.request import ClarityRequest
from airflow_provider_clarity.settings import QuotaSettings
from airflow_provider_clarity.version_compat import core_timetable, dag_bag

__all__ = [
    "ProjectPlan",
    "TaskPlan",
    "check",
    "collect",
    "main",
    "plan_dags",
    "render",
    "run_calls",
    "task_kind",
    "timetable_summary",
]

#: Days looked at from the next UTC midnight; the busiest one is the budget's test.
DAYS = 7
#: Runs read per DAG at most: an every-second schedule must not hang the planner or the page.
MAX_RUNS = 10_000
# Executors whose workers all run on the scheduler's host: file:// is shared there.
_ONE_HOST_EXECUTORS = frozenset({"LocalExecutor", "SequentialExecutor", "DebugExecutor"})


@dataclass
class TaskPlan:
    """One Clarity task as the planner sees it."""

    dag_id: str
    task_id: str
    kind: str  # "export" or "derive"
    schedule: str
    runs: list[datetime] = field(default_factory=list)
    unknown_runs: bool = False
    project_id: str = ""
    settings: QuotaSettings | None = None
    host: str = ""
    request: ClarityRequest | None = None  # None: templated, known only at run time
    shareable: bool = False
    max_age: timedelta = timedelta(0)
    note: str = ""
    resolved: bool = True  # False: the connection was templated or could not be read

    @property
    def label(self) -> str:
        return f"{self.dag_id}.{self.task_id}"

    @property
    def breakdown(self) -> str:
        if self.request is None:
            return "(templated)"
        days = f" ({self.request.num_of_days} days)" if self.request.num_of_days > 1 else ""
        return (",".join(self.request.dimensions) or "no dimension") + days


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


# ------------------------------------------------------------------ reading the DAGs


def timetable_summary(timetable: Any) -> tuple[str, bool | None]:
    """A schedule's label, and whether some of its runs cannot be counted: ``None`` when
    none can (asset-triggered or continuous), ``True`` for time *or* asset events."""
    name = type(timetable).__name__
    summary = str(getattr(timetable, "summary", "") or name)
    if name == "NullTimetable":
        return "None (only when triggered)", False
    if name == "OnceTimetable":
        return "@once (one run ever)", False
    if ("Asset" in name and "Time" not in name) or name == "ContinuousTimetable":
        return f"{summary} (asset-triggered or continuous: unknown)", None
    if "Asset" in name:
        return summary + " + asset events (unknown)", True
    return summary, False


def _runs(dag: Any, start: datetime, days: int) -> tuple[list[datetime], bool, str]:
    """Run times of ``dag`` in ``[start, start + days)``, whether others are unknown, a label."""
    from airflow.timetables.base import TimeRestriction

    timetable = core_timetable(dag)
    summary, unknown = timetable_summary(timetable)
    if unknown is None:
        return [], True, summary
    if type(timetable).__name__ in ("NullTimetable", "OnceTimetable"):
        return [], False, summary
    import pendulum

    end = start + timedelta(days=days)
    restriction = TimeRestriction(
        earliest=pendulum.instance(start), latest=pendulum.instance(end), catchup=True
    )
    runs: list[datetime] = []
    last = None
    while len(runs) < MAX_RUNS:
        info = timetable.next_dagrun_info(
            last_automated_data_interval=last, restriction=restriction
        )
        if info is None or info.run_after >= end:
            break
        if info.run_after >= start:
            runs.append(info.run_after.astimezone(UTC))
        last = info.data_interval
    return runs, unknown, summary


def _literal(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" not in value and "{%" not in value
    if isinstance(value, list | tuple):
        return all(_literal(v) for v in value)
    return isinstance(value, int)


def _shareable(operator: Any, one_host: bool) -> tuple[bool, str]:
    """Whether the raw answer lands where other workers can read it, and why not."""
    where = operator.raw_location if operator.raw_location is not None else operator.destination
    if where is None:
        return False, "raw kept in the task state store: not shareable"
    text = str(where)
    if text.startswith("{{"):
        return False, "templated raw location: sharing not counted"
    if text.startswith("/") or text.startswith(("file://", "local://")):
        if one_host:
            return True, ""
        return False, "file:// on worker disk with workers on several hosts: not counted"
    return True, ""


def _executor_is_one_host() -> bool:
    from airflow.configuration import conf

    names = [n.strip().split(".")[-1] for n in conf.get("core", "executor").split(",")]
    return all(n in _ONE_HOST_EXECUTORS for n in names if n)


def _resolve(task: TaskPlan, operator: Any, hooks: dict[str, Any]) -> None:
    """Project, quota settings and host of an export's connection: offline, no call."""
    from airflow_provider_clarity.hooks.clarity import ClarityHook

    conn_id = operator.clarity_conn_id
    if not _literal(conn_id):
        task.project_id, task.note = f"(templated connection {conn_id!r})", "not resolved"
        task.settings, task.resolved = QuotaSettings(task.project_id), False
        return
    try:
        hook = hooks.setdefault(conn_id, ClarityHook(clarity_conn_id=conn_id))
        task.settings = hook.quota_settings
        task.host = hook.base_url
    except Exception as exc:  # a missing connection or a bad extra: say which, keep going
        task.settings, task.resolved = QuotaSettings(conn_id), False
        task.note = f"connection {conn_id!r} not resolved ({type(exc).__name__}); counted as its id"
    task.project_id = task.settings.project_id
    # A serialized export keeps only its template fields: the connection's default applies.
    max_age: timedelta | None = getattr(operator, "max_snapshot_age", None)
    if max_age is None:
        max_age = timedelta(seconds=task.settings.max_snapshot_age_seconds)
    task.max_age = max_age


#: What an export's serialized form (the api-server's view of a DAG) always carries.
_EXPORT_FIELDS = frozenset({"clarity_conn_id", "num_of_days", "dimensions", "raw_location"})
_DERIVE_FIELDS = frozenset({"source", "outputs"})


def task_kind(task: Any) -> str | None:
    """``"export"``, ``"mapped"`` (an expanded export), ``"derive"`` or ``None``.

    Works on the DAG file's operators and on the serialized ones the api-server reads from
    the metadata DB (which keep an operator's template fields, not its class): an export, or
    a subclass of one, is what has the export's template fields.
    """
    from airflow_provider_clarity.operators.derive import ClarityDeriveOperator
    from airflow_provider_clarity.operators.export import ClarityExportOperator

    if isinstance(task, ClarityExportOperator):
        return "export"
    if isinstance(task, ClarityDeriveOperator):
        return "derive"
    cls = getattr(task, "operator_class", None)
    if isinstance(cls, type):  # a MappedOperator of a DAG file
        return "mapped" if issubclass(cls, ClarityExportOperator) else None
    # Airflow 3.1 deserializes a mapped task as airflow.models.MappedOperator, its class a dict.
    if not type(task).__name__.startswith("Serialized") and not isinstance(cls, dict):
        return None  # a DAG file's operator that is not ours
    fields = frozenset(getattr(task, "template_fields", ()) or ())
    if fields >= _EXPORT_FIELDS:
        return "mapped" if hasattr(task, "partial_kwargs") else "export"
    return "derive" if fields >= _DERIVE_FIELDS and not hasattr(task, "partial_kwargs") else None


RunsOf = Callable[[Any], tuple[list[datetime], bool, str]]


def collect(
    dags: Iterable[Any], *, start: datetime, days: int = DAYS, runs_of: RunsOf | None = None
) -> list[TaskPlan]:
    """Every Clarity task of ``dags``, with its runs in ``[start, start + days)``.

    ``runs_of(dag)`` replaces the schedule arithmetic: ``(runs, others unknown, schedule)``.
    The api-server passes one that starts from the scheduler's next run in the metadata DB.
    """
    one_host = _executor_is_one_host()
    hooks: dict[str, Any] = {}
    found: list[TaskPlan] = []
    for dag in sorted(dags, key=lambda d: d.dag_id):
        kinds = {t.task_id: task_kind(t) for t in dag.tasks}
        clarity = [t for t in dag.tasks if kinds[t.task_id] in ("export", "derive")]
        mapped = [t for t in dag.tasks if kinds[t.task_id] == "mapped"]
        for operator in mapped:  # one call per mapped instance: known only at run time
            task = TaskPlan(dag.dag_id, operator.task_id, "export", "mapped (.expand)")
            task.unknown_runs, task.note = True, "mapped: its calls are known only when it runs"
            conn_id = operator.partial_kwargs.get("clarity_conn_id") or "clarity_default"
            _resolve(task, SimpleNamespace(clarity_conn_id=conn_id, max_snapshot_age=None), hooks)
            found.append(task)
        if not clarity:
            continue
        runs, unknown, schedule = (runs_of or (lambda d: _runs(d, start, days)))(dag)
        for operator in clarity:
            task = TaskPlan(dag.dag_id, operator.task_id, "derive", schedule, runs, unknown)
            if kinds[operator.task_id] == "export":
                task.kind = "export"
                _resolve(task, operator, hooks)
                if _literal(operator.num_of_days) and _literal(operator.dimensions):
                    task.request = ClarityRequest.build(operator.num_of_days, operator.dimensions)
                task.shareable, why = _shareable(operator, one_host)
                task.note = "; ".join(n for n in (task.note, why) if n)
            found.append(task)
    return found


# ------------------------------------------------------------------ the day's arithmetic


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


def _day_calls(
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


def _covers(source: frozenset[str], target: frozenset[str]) -> bool:
    if source == target:
        return True
    if not target:  # the no-dimension snapshot has 7 blocks no breakdown holds
        return False
    try:
        validate_roll_up(sorted(source), sorted(target))
    except ClarityError:
        return False
    return True


def _cover(
    targets: dict[frozenset[str], int], candidates: set[frozenset[str]]
) -> list[tuple[frozenset[str], list[frozenset[str]]]]:
    """Greedy set cover: the candidate serving most breakdowns first, fewer dimensions on a tie."""
    chosen: list[tuple[frozenset[str], list[frozenset[str]]]] = []
    left = set(targets)
    while left:
        best = max(
            sorted(candidates, key=sorted),
            key=lambda c: (sum(_covers(c, t) for t in left), -len(c)),
        )
        served = sorted((t for t in left if _covers(best, t)), key=lambda t: (len(t), sorted(t)))
        left -= set(served)
        chosen.append((best, served))
    return chosen


def _suggest(
    needs: dict[tuple[int, frozenset[str]], int],
) -> list[tuple[tuple[str, ...], int, list[str]]]:
    """As few calls as serve every breakdown. Two greedy covers: from the requested
    breakdowns alone, and also from unions of two that fit one call (at most 3 dimensions);
    the first wins a tie, since finer answers reach Clarity's 1000-row cap sooner."""
    from airflow_provider_clarity._api import MAX_DIMENSIONS, VALID_DIMENSIONS

    def name(dims: frozenset[str]) -> str:
        return ",".join(d for d in VALID_DIMENSIONS if d in dims) or "no dimension"

    plan: list[tuple[tuple[str, ...], int, list[str]]] = []
    for days in sorted({d for d, _ in needs}):
        targets = {dims: calls for (d, dims), calls in needs.items() if d == days}
        unions = {a | b for a in targets for b in targets if len(a | b) <= MAX_DIMENSIONS}
        covers = [_cover(targets, set(targets)), _cover(targets, set(targets) | unions)]
        cost = [sum(max(targets[t] for t in served) for _, served in c) for c in covers]
        suffix = f" ({days} days)" if days > 1 else ""
        for source, served in covers[0] if cost[0] <= cost[1] else covers[1]:
            order = tuple(d for d in VALID_DIMENSIONS if d in source)
            calls = max(targets[t] for t in served)
            plan.append((order, calls, [name(t) + suffix for t in served]))
    return plan


def plan_projects(
    tasks: Sequence[TaskPlan], *, start: datetime, days: int = DAYS
) -> list[ProjectPlan]:
    """Group the exports by project and work out each project's busiest day."""
    by_project: dict[str, list[TaskPlan]] = defaultdict(list)
    for task in tasks:
        if task.kind == "export":
            by_project[task.project_id].append(task)
    plans: list[ProjectPlan] = []
    for project_id, exports in sorted(by_project.items()):
        settings = next(t.settings for t in exports if t.settings is not None)
        days_calls = [
            (start + timedelta(days=n), *_day_calls(exports, start + timedelta(days=n)))
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
            and _covers(frozenset(source.request.dimensions), frozenset(target.request.dimensions))
        ]
        needs: dict[tuple[int, frozenset[str]], int] = defaultdict(int)
        for task in calling:
            assert task.request is not None
            key = (task.request.num_of_days, frozenset(task.request.dimensions))
            needs[key] += calls[task.label]
        suggestion = _suggest(needs)
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


# ------------------------------------------------------------------ the report


def render(plans: Sequence[ProjectPlan], derives: Sequence[TaskPlan] = ()) -> str:
    """The report ``plan`` prints: one section per project. Never holds a token."""
    if not plans:
        return "No ClarityExportOperator found in these DAGs: no Clarity call is planned.\n"
    lines: list[str] = []
    for plan in plans:
        s = plan.settings
        lines.append(
            f"Clarity project '{plan.project_id}': limit {s.daily_limit} - reserve {s.reserve} "
            f"= {s.capacity} calls a day for Airflow ({s.window.value})"
        )
        lines.append(f"  busiest day: {plan.day:%Y-%m-%d} (UTC), of the next {DAYS}")
        for task in plan.tasks:
            count = plan.calls.get(task.label, 0)
            extra = ""
            if task.label in plan.absorbed:
                n, by = plan.absorbed[task.label]
                extra = f"; {n} run(s) reuse {by}'s shared snapshot"
            if task.note:
                extra += f"; {task.note}"
            unknown = "+?" if task.unknown_runs else ""
            lines.append(
                f"  {task.label:<40} {task.breakdown:<22} {count}{unknown} call(s)   "
                f"schedule {task.schedule}{extra}"
            )
        absorbed = sum(n for n, _ in plan.absorbed.values())
        verdict = "fits" if plan.fits else f"OVER BUDGET by {plan.spent - s.capacity}"
        lines.append(
            f"  calls as written: {plan.scheduled} scheduled - {absorbed} absorbed by shared "
            f"snapshots = {plan.spent} of {s.capacity}: {verdict}"
        )
        if plan.unknown:
            names = ", ".join(t.label for t in plan.unknown)
            lines.append(f"  unknown (asset-triggered, continuous or mapped): {names}; not counted")
        for target, source in plan.derivable:
            lines.append(
                f"  derivable: {target.label} ({target.breakdown}) from {source.label}'s "
                f"{source.breakdown} answer (ClarityDeriveOperator, no call)"
            )
        if plan.suggested < plan.spent:
            lines.append(
                f"  suggested plan: {plan.suggested} call(s) a day instead of {plan.spent}"
            )
            for dims, calls, tables in plan.suggestion:
                lines.append(
                    f"    {calls} x {','.join(dims) or 'no dimension'}  -> {'; '.join(tables)}"
                )
        lines.append("")
    for task in derives:
        lines.append(f"derive task {task.label}: 0 calls (rolls up a kept snapshot)")
    return "\n".join(lines).rstrip() + "\n"


def plan_dags(
    dags: Iterable[Any], *, start: datetime | None = None
) -> tuple[list[ProjectPlan], list[TaskPlan]]:
    """The per-project plans of ``dags`` (and the derive tasks), from ``start`` (the next UTC
    midnight by default)."""
    if start is None:
        now = datetime.now(UTC)
        start = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    tasks = collect(dags, start=start)
    return plan_projects(tasks, start=start), [t for t in tasks if t.kind == "derive"]


def check(dags_folder: str | os.PathLike[str] | None = None) -> tuple[int, str]:
    """Load ``dags_folder`` (Airflow's ``[core] dags_folder`` by default) and plan it.

    Returns the exit status (0 fits, 1 over budget, 2 a DAG file failed to import) and the
    report.
    """
    folder = None if dags_folder is None else str(dags_folder)
    bag = dag_bag(folder)
    if bag.import_errors:
        errors = "\n".join(
            f"  {path}: {error.strip().splitlines()[-1]}"
            for path, error in bag.import_errors.items()
        )
        return 2, f"DAG files that failed to import (fix them first):\n{errors}\n"
    plans, derives = plan_dags(bag.dags.values())
    status = 0 if all(p.fits for p in plans) else 1
    return status, render(plans, derives)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m airflow_provider_clarity.plan [DAGS_FOLDER]``."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_clarity.plan",
        description="Check, before the day starts, that your DAGs fit Clarity's daily quota.",
    )
    parser.add_argument("dags_folder", nargs="?", help="default: Airflow's [core] dags_folder")
    args = parser.parse_args(argv)
    # Read connections from the metadata DB too, as the airflow CLI does (see quota/cli.py).
    os.environ.setdefault("_AIRFLOW_PROCESS_CONTEXT", "server")
    status, report = check(args.dags_folder)
    (sys.stderr if status == 2 else sys.stdout).write(report)
    return status


if __name__ == "__main__":
    sys.exit(main())
