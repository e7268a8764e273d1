"""A project's day as an inline SVG timeline: calls, scheduled runs, now and the reset."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from airflow_provider_clarity.plugins.page_data import CallReport, ProjectReport
from airflow_provider_clarity.plugins.quota_schedule import ScheduledRun
from airflow_provider_clarity.quota.records import UNCHARGED_OUTCOMES
from airflow_provider_clarity.windows.utc import utc_text

WIDTH, LEFT, RIGHT = 960, 16, 16
AXIS_Y, LANE = 92, 16
_OUTCOME_COLOURS = {"200": "#2f855a", "pending": "#718096", "429": "#c53030"}
OTHER_COLOUR = "#dd6b20"  # timeouts, 5xx, lost answers: counted, but failed
_SCHEDULED_COLOUR = "#6b46c1"  # runs still to come


def moment_text(value: str | None, with_date: bool = False) -> str:
    """An ISO moment of the report as people read it: ``utc_text``, or its time alone."""
    if value is None:
        return "-"
    moment = datetime.fromisoformat(value)
    return utc_text(moment) if with_date else moment.astimezone(UTC).strftime("%H:%M:%S UTC")


def outcome_colour(outcome: str) -> str:
    """A call's colour; grey for what the ledger does not charge (``UNCHARGED_OUTCOMES``)."""
    return _OUTCOME_COLOURS.get(
        outcome, "#a0aec0" if outcome in UNCHARGED_OUTCOMES else OTHER_COLOUR
    )


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
    colour = outcome_colour(call["outcome"])
    fill = colour if call["counted"] else "#fff"
    tip = f"{moment_text(call['at'])} {call['caller']['label']}: {call['outcome']}"
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
    tip = (
        f"{moment_text(run['at'])} {run['dag_id']} / {run['task_id']}: scheduled, {run['request']}"
    )
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
