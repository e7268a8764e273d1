"""The "Clarity quota" page: self-contained HTML with an inline SVG timeline per project.

Rendered on the server from the same report the JSON endpoint returns, so the two cannot
disagree; the page loads nothing from the network. Its one inline script opens a caller's
task instance page in the UI around it (``script.py``).

Its parts: ``styles`` (CSS), ``script`` (JS), ``timeline`` (SVG geometry) and ``tables``
(HTML tables and badges); this module lays out a project's card and the page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow_provider_clarity.plugins.page_data import ProjectReport
from airflow_provider_clarity.plugins.quota_page.script import OPEN_IN_UI
from airflow_provider_clarity.plugins.quota_page.styles import STYLE
from airflow_provider_clarity.plugins.quota_page.tables import (
    badges,
    calls_table,
    scheduled_section,
)
from airflow_provider_clarity.plugins.quota_page.timeline import (
    OTHER_COLOUR,
    escape,
    moment_text,
    timeline,
)


def _project(project: ProjectReport, now: datetime) -> str:
    name = escape(project["project_id"])
    if "error" in project:
        return (
            f'<section class="card project" data-project="{name}"><h2>{name}</h2>'
            f'<span class="badge error">Ledger unreadable</span> {escape(project["error"])}'
            f'<p class="muted">Variable {escape(project["variable_key"])}; fix or delete it in '
            "Admin &gt; Variables.</p></section>"
        )
    settings: dict[str, Any] = project["settings"]
    next_reset = project["next_reset"]
    if next_reset is None:
        next_text = "never (the reserve keeps every call)"
    elif datetime.fromisoformat(next_reset) <= now:
        next_text = "now"
    else:
        next_text = moment_text(next_reset, with_date=True)
    window = (
        "UTC day"
        if settings["window"] == "utc_day"
        else f"rolling {settings['rolling_window_seconds']} s"
    )
    in_window = [c for c in project["calls"] if c["in_window"]]
    earlier = len(project["calls"]) - len(in_window)
    used = f"{project['used']} of {project['capacity']}"
    remaining_class = "remaining" if project["remaining"] else "remaining none-left"
    earlier_note = (
        f'<p class="muted">{earlier} earlier call(s) are kept in the ledger; the JSON endpoint '
        "lists them.</p>"
        if earlier
        else ""
    )
    source = project["settings_source"]
    source_class = "settings-source" + ("" if source["kind"] == "connection" else " fallback")
    if source["kind"] == "connection":
        source_note = f'<p class="{source_class}">Counted with the settings of '
        source_note += f"{escape(source['detail'])}, as its exports are."
    else:
        source_note = f'<p class="{source_class}">Settings: {escape(source["detail"])}.'
    if source["stored_differ"]:
        source_note += (
            " The ledger stores other settings (a task with its own <code>reserve</code>, or "
            "an edit): exports count with these."
        )
    source_note += "</p>"
    scheduled = project.get("scheduled_today")
    scheduled_stat = (
        f'<div class="stat">Still scheduled<b class="scheduled">{scheduled["calls"]}</b></div>'
        if scheduled is not None
        else ""
    )
    window_start = moment_text(project["window_start"], True)
    window_end = moment_text(project["window_end"], True)
    return f"""
<section class="card project" data-project="{name}">
<h2>{name}</h2>
{badges(project)}
<div class="stats">
 <div class="stat">Remaining<b class="{remaining_class}">{project["remaining"]}</b></div>
 <div class="stat">Used in window<b class="used">{used}</b></div>
 <div class="stat">Next call possible<b class="next-reset">{next_text}</b></div>
 {scheduled_stat}
</div>
<p class="muted">Window: {window}, {window_start} to
{window_end}. Limit {settings["daily_limit"]}, reserve {settings["reserve"]}
(kept for people outside Airflow), reset margin {settings["reset_margin_seconds"]:g} s.
Variable <code>{escape(project["variable_key"])}</code>.</p>
{source_note}
{timeline(project, now)}
<p class="legend muted"><span><i class="dot" style="background:#2f855a"></i>200</span>
<span><i class="dot" style="background:#718096"></i>pending</span>
<span><i class="dot" style="background:#c53030"></i>429</span>
<span><i class="dot" style="background:{OTHER_COLOUR}"></i>other failure (counted)</span>
<span><i class="dot hollow"></i>not counted</span>
<span><i class="diamond"></i>scheduled run</span></p>
{calls_table(in_window, project["calls_not_shown"])}
{earlier_note}
{scheduled_section(scheduled)}
</section>"""


def render(data: dict[str, Any]) -> str:
    """The whole page for the endpoint's ``data``."""
    now = datetime.fromisoformat(data["generated_at"])
    projects = data["projects"]
    body = "".join(_project(p, now) for p in projects) or (
        '<p class="muted">No Clarity quota ledger yet, and no unpaused DAG with a scheduled '
        "export: a project appears after its first export call or once one is scheduled.</p>"
    )
    notes = ""
    if fault := data.get("pool_fault"):
        notes += f'<p class="badge error pool-fault">{escape(fault)}</p>'
    if hidden := data.get("hidden_projects"):
        notes += (
            f'<p class="muted hidden-projects">{hidden} project(s) used only by DAGs you may not '
            "read are not shown.</p>"
        )
    if data.get("schedule_error"):
        notes += (
            '<p class="badge error schedule-error">The DAG schedules could not be read: '
            f"{escape(data['schedule_error'])}. Calls still scheduled are not shown.</p>"
        )
    if unresolved := data.get("unresolved_exports"):
        names = "; ".join(f"{u['dag_id']} / {u['task_id']} ({u['why']})" for u in unresolved)
        notes += (
            '<p class="muted unresolved">Scheduled exports whose project is not known here (the '
            f"api-server cannot read their connection): {escape(names)}.</p>"
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Clarity quota</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{STYLE}</style><script>{OPEN_IN_UI}</script></head>
<body><h1>Clarity quota</h1>
<p class="muted">Calls Airflow made to the Microsoft Clarity Data Export API, per project, as of
{moment_text(data["generated_at"], with_date=True)}. The same data as JSON:
<a href="api/projects">api/projects</a>.</p>
{notes}{_pages(data)}{body}{_pages(data)}
</body></html>"""


def _pages(data: dict[str, Any]) -> str:
    """Links to the previous and next page of projects, when there is more than one."""
    page, pages = data.get("page", 1), data.get("pages", 1)
    if pages <= 1 and page <= 1:
        return ""
    links = []
    if page > 1:
        links.append(f'<a class="prev" href="?page={min(page - 1, pages)}">previous</a>')
    links.append(
        f'<span class="muted">page {page} of {pages} ({data.get("projects_total", 0)} projects, '
        f"{data.get('per_page', 0)} a page)</span>"
    )
    if page < pages:
        links.append(f'<a class="next" href="?page={page + 1}">next</a>')
    return f'<nav class="pages">{" ".join(links)}</nav>'
