"""A project's day as an inline SVG timeline: calls, scheduled runs, now and the reset."""

from __future__ import annotations

import html
from datetime import UTC, datetime

from airflow_provider_clarity.plugins.page_data import CallReport, ProjectReport
from airflow_provider_clarity.plugins.quota_schedule import ScheduledRun
from airflow_provider_clarity.quota.records import UNCHARGED_OUTCOMES
from airflow_provider_clarity.quota.report import printable
from airflow_provider_clarity.windows.utc import utc_text

WIDTH, LEFT, RIGHT = 960, 16, 16
AXIS_Y, LANE = 92, 16
_OUTCOME_COLOURS = {"200": "#2f855a", "pending": "#718096", "429": "#c53030"}
OTHER_COLOUR = "#dd6b20"  # timeouts, 5xx, lost answers: counted, but failed
_SCHEDULED_COLOUR = "#6b46c1"  # runs still to come


def escape(value: object) -> str:
    """How the page writes any text: ``printable`` (control and bidi characters shown as
    escapes, as ``usage`` prints them), then HTML-escaped, quotes included."""
    return html.escape(printable(value))


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


def _call_tip(call: CallReport) -> str:
    tip = f"{moment_text(call['at'])} {call['caller']['label']}: {call['outcome']}"
    return tip if call["counted"] else tip + " (not counted)"


def _run_tip(run: ScheduledRun) -> str:
    tip = (
        f"{moment_text(run['at'])} {run['dag_id']} / {run['task_id']}: scheduled, {run['request']}"
    )
    if run["shared_from"]:
        tip += f" (no call: reuses {run['shared_from']}'s shared snapshot)"
    return tip


def _marker(project: ProjectReport, call: CallReport, x: float, lane: int) -> str:
    y = AXIS_Y - 12 - lane * LANE
    colour = outcome_colour(call["outcome"])
    fill = colour if call["counted"] else "#fff"
    tip = _call_tip(call)
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
    tip = _run_tip(run)
    dash = ' stroke-dasharray="2 2"' if run["shared_from"] else ""
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


#: Marker lanes above the axis; a column that needs more is drawn as one counted stack.
LANES = 4
#: Markers closer than this (in px, about 14 minutes of a day) share a column.
COLUMN = 14.0


def _lanes(xs: list[float]) -> list[tuple[float, int, int]]:
    """Where each marker at ``xs`` (in drawing order) goes: ``(x, lane, stack)``.

    A marker takes the first lane whose latest marker is at least ``COLUMN`` px to its left.
    When all ``LANES`` are taken, it joins the top lane's marker (``stack`` is that marker's
    index): it is drawn at the same spot, and the spot is labelled with how many it holds,
    so five calls in one minute read as four dots, the top one marked "x2".
    """
    last: list[tuple[float, int]] = []  # per lane: (x, index) of its latest own marker
    placed: list[tuple[float, int, int]] = []
    for index, x in enumerate(xs):
        lane = next((i for i, (seen, _) in enumerate(last) if x - seen >= COLUMN), len(last))
        if lane < LANES:
            if lane < len(last):
                last[lane] = (x, index)
            else:
                last.append((x, index))
            placed.append((x, lane, index))
        else:
            anchor_x, anchor = last[LANES - 1]
            placed.append((anchor_x, LANES - 1, anchor))
    return placed


def _stack_label(x: float, lane: int, tips: list[str]) -> str:
    """The count beside a spot that holds several markers, with all of them in its tooltip."""
    y = AXIS_Y - 12 - lane * LANE
    return (
        f'<text class="stack-count" data-count="{len(tips)}" x="{x + 9:.1f}" y="{y + 4:.1f}" '
        f'font-size="11" font-weight="bold" fill="#2d3748">\u00d7{len(tips)}'
        f"<title>{escape('; '.join(tips))}</title></text>"
    )


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
    calls = [c for c in project.get("calls", []) if c["in_window"]]
    runs = scheduled["runs"] if scheduled else []
    xs = [_x(item["at"], start, end) for item in [*calls, *runs]]
    stacks: dict[int, list[str]] = {}
    placed = _lanes(xs)
    for n, (x, lane, stack) in enumerate(placed):
        if n < len(calls):
            parts.append(_marker(project, calls[n], x, lane))
            tip = _call_tip(calls[n])
        else:
            parts.append(_scheduled_marker(runs[n - len(calls)], x, lane))
            tip = _run_tip(runs[n - len(calls)])
        stacks.setdefault(stack, []).append(tip)
    for stack, tips in stacks.items():
        if len(tips) > 1:
            x, lane, _ = placed[stack]
            parts.append(_stack_label(x, lane, tips))
    label = f"Calls in the current window of project {project['project_id']}, and runs to come"
    return (
        f'<svg class="timeline" role="img" aria-label="{escape(label)}" viewBox="0 0 {WIDTH} '
        f'{AXIS_Y + 26}" preserveAspectRatio="xMinYMin meet">{"".join(parts)}</svg>'
    )
