"""The plan as the text report ``plan`` prints: one section per project."""

from __future__ import annotations

from collections.abc import Sequence

from airflow_provider_clarity.plan.budget import ProjectPlan
from airflow_provider_clarity.plan.schedule import DAYS
from airflow_provider_clarity.plan.suggest import Need, SuggestedCall
from airflow_provider_clarity.plan.tasks import TaskPlan


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
            lines.extend(_suggested(call) for call in plan.suggestion)
            lines.append(f"    {plan.rows.describe()}")
        lines.append("")
    for task in derives:
        lines.append(f"derive task {task.label}: 0 calls (rolls up a kept snapshot)")
    return "\n".join(lines).rstrip() + "\n"


def _suggested(call: SuggestedCall) -> str:
    """A suggested call, why it is made that many times a day (the tasks it replaces and
    their calls), and why its answer fits under the row cap."""
    head = f"    {call.calls} x {','.join(call.dimensions) or 'no dimension'}  -> "
    head += "; ".join(call.tables)

    def askers(need: Need) -> str:
        return " + ".join(f"{a.label} ({a.calls} a day, {a.schedule})" for a in need.askers)

    if len(call.serves) == 1:
        why = f"replaces {askers(call.serves[0])}"
    else:
        why = "the most calls a day of the tables it serves: " + "; ".join(
            f"{need.table} {need.calls} = {askers(need)}" for need in call.serves
        )
    lines = [head, f"      why {call.calls}: {why}"]
    if call.fit is not None:
        lines.append(f"      fit {call.fit.kind.value}: {call.fit.text}")
    return "\n".join(lines)
