"""The page's HTML tables and badges: calls in the window, runs still scheduled."""

from __future__ import annotations

from airflow_provider_clarity.plugins.page_data import MAX_CALLS, CallReport, ProjectReport
from airflow_provider_clarity.plugins.quota_page.timeline import (
    escape,
    moment_text,
    outcome_colour,
)
from airflow_provider_clarity.plugins.quota_schedule import ScheduledReport

MAX_SCHEDULED_ROWS = 50


def _caller_cell(call: CallReport) -> str:
    caller = call["caller"]
    if caller.get("hidden"):
        return '<span class="muted hidden-dag">a DAG you may not read</span>'
    if caller["url"] is None:
        return escape(caller["label"])
    text = f"{caller['dag_id']} / {caller['task_id']}"
    if caller["map_index"] is not None and caller["map_index"] >= 0:
        text += f" [{caller['map_index']}]"
    return (
        f'<a href="{escape(caller["url"])}" target="_top" data-ui-link>{escape(text)}</a>'
        f'<br><span class="muted mono">{escape(caller["run_id"] or "")}</span>'
    )


def calls_table(calls: list[CallReport], not_shown: int = 0) -> str:
    """The calls, newest first; ``not_shown`` older ones were left out of the report."""
    more = (
        f'<p class="muted more-calls">{not_shown} more not shown: older calls the ledger keeps '
        f"beyond the newest {MAX_CALLS}.</p>"
        if not_shown
        else ""
    )
    if not calls:
        return '<p class="muted">No calls in this window.</p>' + more
    rows = []
    for call in reversed(calls):
        counted = "yes" if call["counted"] else "no"
        rows.append(
            f'<tr><td class="mono">{moment_text(call["at"], with_date=True)}</td>'
            f"<td>{_caller_cell(call)}</td>"
            f'<td><span class="dot" style="background:{outcome_colour(call["outcome"])}"></span>'
            f"{escape(call['outcome'])}</td><td>{counted}</td>"
            f'<td class="mono">{escape(call["request"])}</td></tr>'
        )
    return (
        '<table class="calls"><thead><tr><th>Time</th><th>Caller (DAG / task, run)</th>'
        "<th>Outcome</th>"
        f"<th>Counted</th><th>Request</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"{more}"
    )


def scheduled_section(scheduled: ScheduledReport | None) -> str:
    """The calls still to come before the window ends: runs, waiting task instances."""
    if scheduled is None:
        return ""
    until = moment_text(scheduled["until"], with_date=True)
    rows = []
    for p in scheduled["pending"]:
        index = f" [{p['map_index']}]" if p["map_index"] >= 0 else ""
        rows.append(
            f'<tr class="pending"><td class="mono">now ({escape(p["state"])})</td>'
            f'<td><a href="{escape(p["url"])}" target="_top" data-ui-link>'
            f"{escape(p['dag_id'])} / {escape(p['task_id'])}{index}</a><br>"
            f'<span class="muted mono">{escape(p["run_id"])}</span></td>'
            "<td>1 (at most)</td><td>a run that exists, not called yet</td></tr>"
        )
    for run in scheduled["runs"]:
        when = "now (overdue)" if run["overdue"] else moment_text(run["at"], with_date=True)
        calls = "1" if run["calls"] else f"0: reuses {escape(run['shared_from'] or '')}'s snapshot"
        rows.append(
            f'<tr class="run"><td class="mono">{when}</td>'
            f'<td><a href="{escape(run["url"])}" target="_top" data-ui-link>'
            f"{escape(run['dag_id'])} / {escape(run['task_id'])}</a></td>"
            f'<td>{calls}</td><td class="mono">{escape(run["request"])}</td></tr>'
        )
    if len(rows) > MAX_SCHEDULED_ROWS:  # a catching-up DAG can have hundreds overdue
        more = len(rows) - MAX_SCHEDULED_ROWS
        rows = rows[:MAX_SCHEDULED_ROWS]
        rows.append(
            f'<tr class="more"><td colspan="4" class="muted">and {more} more: the JSON endpoint '
            "lists them all</td></tr>"
        )
    if scheduled["hidden_calls"]:
        rows.append(
            f'<tr class="hidden"><td class="mono">-</td><td class="muted">DAGs you may not read'
            f"</td><td>{scheduled['hidden_calls']}</td><td>-</td></tr>"
        )
    table = (
        '<table class="scheduled-runs"><thead><tr><th>When</th><th>DAG / task</th><th>Calls</th>'
        "<th>Request</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
        if rows
        else '<p class="muted">No run of an unpaused DAG is scheduled to call before then.</p>'
    )
    unknown = ""
    if scheduled["unknown"]:
        names = ", ".join(f"{u['dag_id']} / {u['task_id']}" for u in scheduled["unknown"])
        unknown = (
            f'<p class="muted unknown">Not counted (asset-triggered, continuous or mapped: '
            f"known only when they run): {escape(names)}.</p>"
        )
    return (
        f"<h3>Still scheduled before {until}</h3>{table}{unknown}"
        '<p class="muted">From the unpaused DAGs\' schedules and the runs already created; '
        "runs triggered by hand or by assets later are not foreseen.</p>"
    )


def badges(project: ProjectReport) -> str:
    badges = []
    if until := project.get("exhausted_until"):
        badges.append(
            f'<span class="badge exhausted">Exhausted until {moment_text(until, True)}</span> '
            "Clarity answered 429: calls made outside Airflow used the rest."
        )
    if until := project.get("degraded_until"):
        badges.append(
            f'<span class="badge degraded">Clarity degraded until {moment_text(until, True)}</span>'
        )
    if not badges:
        badges.append('<span class="badge ok">Available</span>' if project["remaining"] else "")
    scheduled = project.get("scheduled_today")
    if scheduled and scheduled["over_by"]:
        badges.append(
            f'<span class="badge over">{scheduled["over_by"]} scheduled call(s) over</span> '
            f"{scheduled['calls']} call(s) are still scheduled before the reset and "
            f"{project['remaining']} remain: the last ones will wait for the reset (or skip or "
            "fail, as their <code>on_quota_exhausted</code> says)."
        )
    return f'<div class="badges">{"".join(badges)}</div>'
