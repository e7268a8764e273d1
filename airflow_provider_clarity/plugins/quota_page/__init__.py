"""The "Clarity quota" page: self-contained HTML with an inline SVG timeline per project.

Rendered on the server from the same report the JSON endpoint returns, so the two cannot
disagree; the page loads nothing from the network. Its one inline script opens a caller's
task instance page in the UI around it (see ``_OPEN_IN_UI``).
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from airflow_provider_clarity.plugins.page_data import CallReport, ProjectReport
from airflow_provider_clarity.plugins.quota_schedule import ScheduledReport, ScheduledRun

WIDTH, LEFT, RIGHT = 960, 16, 16
AXIS_Y, LANE = 92, 16
MAX_SCHEDULED_ROWS = 50
_OUTCOME_COLOURS = {"200": "#2f855a", "pending": "#718096", "429": "#c53030"}
_OTHER_COLOUR = "#dd6b20"  # timeouts, 5xx, connection errors: counted, but failed
_SCHEDULED_COLOUR = "#6b46c1"  # runs still to come
_UNCHARGED = frozenset({"401", "403"})

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:20px 24px;
color:#1a202c;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:17px;margin:0 0 8px}
.muted{color:#4a5568}
.card{border:1px solid #e2e8f0;border-radius:8px;padding:16px 18px;margin:16px 0}
.stats{display:flex;gap:28px;flex-wrap:wrap;margin:6px 0 10px}.stat b{display:block;font-size:22px}
.badge{display:inline-block;border-radius:4px;padding:2px 8px;margin:0 6px 6px 0;font-weight:600}
.exhausted{background:#fed7d7;color:#822727}.degraded{background:#feebc8;color:#7b341e}
.none-left{color:#c53030}.ok{background:#c6f6d5;color:#22543d}.error{background:#fed7d7;color:#822727}
table{border-collapse:collapse;width:100%;margin-top:8px}th,td{text-align:left;padding:4px 8px;
border-bottom:1px solid #edf2f7;vertical-align:top}th{font-weight:600;color:#4a5568}
td.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px}
a{color:#2b6cb0}svg.timeline{display:block;width:100%;max-width:1100px;height:auto}
.legend span{margin-right:14px}.dot{display:inline-block;width:10px;height:10px;border-radius:50%;
margin-right:4px;vertical-align:-1px}
.dot.hollow{border:2px solid #a0aec0;width:6px;height:6px}
.diamond{display:inline-block;width:8px;height:8px;border:2px solid #6b46c1;transform:rotate(45deg);
margin-right:5px}.over{background:#fefcbf;color:#744210}h3{font-size:15px;margin:14px 0 2px}
"""

# The UI shows external views in an iframe sandboxed without allow-top-navigation (3.3.2),
# so a target="_top" link does nothing there. The frame is same-origin, so the link instead
# tells the UI's router to show the page, as its own links do. Opened on its own (no parent
# UI), the link is an ordinary one.
_OPEN_IN_UI = """
document.addEventListener("click", function (event) {
  var link = event.target.closest && event.target.closest("a[data-ui-link]");
  if (!link || window.parent === window) return;
  try {
    window.parent.history.pushState({}, "", link.getAttribute("href"));
    window.parent.dispatchEvent(new PopStateEvent("popstate"));
    event.preventDefault();
  } catch (err) { /* not the UI around us: let the link navigate */ }
});
"""


def _time(value: str | None, with_date: bool = False) -> str:
    if value is None:
        return "-"
    moment = datetime.fromisoformat(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC" if with_date else "%H:%M:%S UTC")


def _colour(outcome: str) -> str:
    return _OUTCOME_COLOURS.get(outcome, "#a0aec0" if outcome in _UNCHARGED else _OTHER_COLOUR)


def _x(value: str, start: datetime, end: datetime) -> float:
    span = (end - start).total_seconds() or 1.0
    share = (datetime.fromisoformat(value) - start).total_seconds() / span
    return LEFT + max(0.0, min(1.0, share)) * (WIDTH - LEFT - RIGHT)


def _ticks(start: datetime, end: datetime) -> list[str]:
    parts = []
    for i in range(9):
        moment = start + (end - start) * (i / 8)
        x = LEFT + i / 8 * (WIDTH - LEFT - RIGHT)
        anchor = "start" if i == 0 else "end" if i == 8 else "middle"
        parts.append(
            f'<line x1="{x:.1f}" y1="{AXIS_Y}" x2="{x:.1f}" y2="{AXIS_Y + 5}" stroke="#a0aec0"/>'
            f'<text x="{x:.1f}" y="{AXIS_Y + 18}" font-size="11" fill="#4a5568" '
            f'text-anchor="{anchor}">{moment:%H:%M}</text>'
        )
    return parts


def _marker(project: ProjectReport, call: CallReport, x: float, lane: int) -> str:
    y = AXIS_Y - 12 - lane * LANE
    colour = _colour(call["outcome"])
    fill = colour if call["counted"] else "#fff"
    tip = f"{_time(call['at'])} {call['caller']['label']}: {call['outcome']}"
    if not call["counted"]:
        tip += " (not counted)"
    return (
        f'<g class="call" data-call-id="{escape(call["id"])}">'
        f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x:.1f}" y2="{AXIS_Y}" stroke="{colour}" '
        'stroke-width="1.5"/>'
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="{fill}" stroke="{colour}" stroke-width="2">'
        f"<title>{escape(tip)}</title></circle></g>"
    )


def _vertical(x: float, colour: str, label: str, dashed: bool = True) -> str:
    dash = ' stroke-dasharray="4 3"' if dashed else ""
    # Near the right edge the label goes left of its line, so it stays on the chart.
    left = x > WIDTH - RIGHT - 140
    text_x, anchor = (x - 4, "end") if left else (x + 4, "start")
    return (
        f'<line x1="{x:.1f}" y1="14" x2="{x:.1f}" y2="{AXIS_Y}" stroke="{colour}"{dash}/>'
        f'<text x="{text_x:.1f}" y="11" font-size="11" fill="{colour}" text-anchor="{anchor}">'
        f"{escape(label)}</text>"
    )


def _scheduled_marker(run: ScheduledRun, x: float, lane: int) -> str:
    """A run still to come: a hollow diamond, dashed when a shared snapshot serves it."""
    y, r = AXIS_Y - 12 - lane * LANE, 6
    tip = f"{_time(run['at'])} {run['dag_id']} / {run['task_id']}: scheduled, {run['request']}"
    dash = ""
    if run["shared_from"]:
        tip += f" (no call: reuses {run['shared_from']}'s shared snapshot)"
        dash = ' stroke-dasharray="2 2"'
    points = f"{x:.1f},{y - r} {x + r:.1f},{y} {x:.1f},{y + r} {x - r:.1f},{y}"
    return (
        f'<g class="scheduled" data-dag-id="{escape(run["dag_id"])}" '
        f'data-task-id="{escape(run["task_id"])}" data-calls="{run["calls"]}">'
        f'<line x1="{x:.1f}" y1="{y + r:.1f}" x2="{x:.1f}" y2="{AXIS_Y}" '
        f'stroke="{_SCHEDULED_COLOUR}" stroke-dasharray="2 2"/>'
        f'<polygon points="{points}" fill="#fff" stroke="{_SCHEDULED_COLOUR}" '
        f'stroke-width="2"{dash}>'
        f"<title>{escape(tip)}</title></polygon></g>"
    )


def _lane(last: list[float], x: float) -> int:
    """The first lane whose latest marker is far enough left of ``x`` (at most four lanes)."""
    lane = next((i for i, seen in enumerate(last) if x - seen >= 14), len(last))
    lane = min(lane, 3)  # past four lanes, markers overlap rather than leave the chart
    if lane < len(last):
        last[lane] = x
    else:
        last.append(x)
    return lane


def timeline(project: ProjectReport, now: datetime) -> str:
    """The window as an SVG strip: one marker per call and per run still scheduled, ``now``
    and the next reset as lines. A rolling window's strip runs on to the scheduled horizon."""
    start = datetime.fromisoformat(project["window_start"])
    end = datetime.fromisoformat(project["window_end"])
    scheduled = project.get("scheduled_today")
    if scheduled:
        end = max(end, datetime.fromisoformat(scheduled["until"]))
    parts = [
        f'<line x1="{LEFT}" y1="{AXIS_Y}" x2="{WIDTH - RIGHT}" y2="{AXIS_Y}" stroke="#4a5568"/>',
        *_ticks(start, end),
    ]
    for key, colour in (("exhausted_until", "#fed7d7"), ("degraded_until", "#feebc8")):
        if isinstance(until := project.get(key), str):
            x0, x1 = _x(now.isoformat(), start, end), _x(until, start, end)
            parts.append(
                f'<rect x="{x0:.1f}" y="14" width="{max(x1 - x0, 2):.1f}" height="{AXIS_Y - 14}" '
                f'fill="{colour}" opacity="0.7"/>'
            )
    parts.append(_vertical(_x(now.isoformat(), start, end), "#2b6cb0", "now", dashed=False))
    next_reset = project.get("next_reset")
    if next_reset and datetime.fromisoformat(next_reset) > now:
        label = f"next call {datetime.fromisoformat(next_reset):%H:%M} UTC"
        parts.append(_vertical(_x(next_reset, start, end), "#2f855a", label))
    last: list[float] = []  # the x of the latest marker in each lane
    for call in (c for c in project.get("calls", []) if c["in_window"]):
        x = _x(call["at"], start, end)
        parts.append(_marker(project, call, x, _lane(last, x)))
    for run in scheduled["runs"] if scheduled else []:
        x = _x(run["at"], start, end)
        parts.append(_scheduled_marker(run, x, _lane(last, x)))
    label = f"Calls in the current window of project {project['project_id']}, and runs to come"
    return (
        f'<svg class="timeline" role="img" aria-label="{escape(label)}" viewBox="0 0 {WIDTH} '
        f'{AXIS_Y + 26}" preserveAspectRatio="xMinYMin meet">{"".join(parts)}</svg>'
    )


def _caller_cell(call: CallReport) -> str:
    caller = call["caller"]
    if caller["url"] is None:
        return escape(caller["label"])
    text = f"{caller['dag_id']} / {caller['task_id']}"
    if caller["map_index"] is not None and caller["map_index"] >= 0:
        text += f" [{caller['map_index']}]"
    return (
        f'<a href="{escape(caller["url"])}" target="_top" data-ui-link>{escape(text)}</a>'
        f'<br><span class="muted mono">{escape(caller["run_id"] or "")}</span>'
    )


def _calls_table(calls: list[CallReport]) -> str:
    if not calls:
        return '<p class="muted">No calls in this window.</p>'
    rows = []
    for call in reversed(calls):
        counted = "yes" if call["counted"] else "no"
        rows.append(
            f'<tr><td class="mono">{_time(call["at"], with_date=True)}</td>'
            f"<td>{_caller_cell(call)}</td>"
            f'<td><span class="dot" style="background:{_colour(call["outcome"])}"></span>'
            f"{escape(call['outcome'])}</td><td>{counted}</td>"
            f'<td class="mono">{escape(call["request"])}</td></tr>'
        )
    return (
        '<table class="calls"><thead><tr><th>Time</th><th>Caller (DAG / task, run)</th>'
        "<th>Outcome</th>"
        f"<th>Counted</th><th>Request</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _scheduled_section(scheduled: ScheduledReport | None) -> str:
    """The calls still to come before the window ends: runs, waiting task instances."""
    if scheduled is None:
        return ""
    until = _time(scheduled["until"], with_date=True)
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
        when = "now (overdue)" if run["overdue"] else _time(run["at"], with_date=True)
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


def _badges(project: ProjectReport) -> str:
    badges = []
    if until := project.get("exhausted_until"):
        badges.append(
            f'<span class="badge exhausted">Exhausted until {_time(until, True)}</span> '
            "Clarity answered 429: calls made outside Airflow used the rest."
        )
    if until := project.get("degraded_until"):
        badges.append(
            f'<span class="badge degraded">Clarity degraded until {_time(until, True)}</span>'
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
        next_text = _time(next_reset, with_date=True)
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
    scheduled = project.get("scheduled_today")
    scheduled_stat = (
        f'<div class="stat">Still scheduled<b class="scheduled">{scheduled["calls"]}</b></div>'
        if scheduled is not None
        else ""
    )
    return f"""
<section class="card project" data-project="{name}">
<h2>{name}</h2>
{_badges(project)}
<div class="stats">
 <div class="stat">Remaining<b class="{remaining_class}">{project["remaining"]}</b></div>
 <div class="stat">Used in window<b class="used">{used}</b></div>
 <div class="stat">Next call possible<b class="next-reset">{next_text}</b></div>
 {scheduled_stat}
</div>
<p class="muted">Window: {window}, {_time(project["window_start"], True)} to
{_time(project["window_end"], True)}. Limit {settings["daily_limit"]}, reserve {settings["reserve"]}
(kept for people outside Airflow), reset margin {settings["reset_margin_seconds"]:g} s.
Variable <code>{escape(project["variable_key"])}</code>.</p>
{timeline(project, now)}
<p class="legend muted"><span><i class="dot" style="background:#2f855a"></i>200</span>
<span><i class="dot" style="background:#718096"></i>pending</span>
<span><i class="dot" style="background:#c53030"></i>429</span>
<span><i class="dot" style="background:{_OTHER_COLOUR}"></i>other failure (counted)</span>
<span><i class="dot hollow"></i>not counted</span>
<span><i class="diamond"></i>scheduled run</span></p>
{_calls_table(in_window)}
{earlier_note}
{_scheduled_section(scheduled)}
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
<style>{_STYLE}</style><script>{_OPEN_IN_UI}</script></head>
<body><h1>Clarity quota</h1>
<p class="muted">Calls Airflow made to the Microsoft Clarity Data Export API, per project, as of
{_time(data["generated_at"], with_date=True)}. The same data as JSON:
<a href="api/projects">api/projects</a>.</p>
{notes}{body}
</body></html>"""
