"""One project's quota ledger as a JSON-ready report: what the page draws and the endpoint returns.

Counting rules stay in ``airflow_provider_clarity.quota``: everything counted here comes
from ``QuotaLedger.from_document(...).status()``, so this module never restates the window
arithmetic.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

from airflow_provider_clarity.connection.settings import Window
from airflow_provider_clarity.plugins.quota_schedule import ScheduledReport, task_instance_url
from airflow_provider_clarity.quota import VARIABLE_PREFIX, QuotaLedger, QuotaStatus, ledger_key
from airflow_provider_clarity.quota.context import split_caller_label
from airflow_provider_clarity.windows.utc import utc_iso

if TYPE_CHECKING:
    from airflow_provider_clarity.plugins.quota_schedule import Schedule


class Caller(TypedDict):
    """Who made a call; ``url`` is the task instance page when the caller is a task."""

    label: str
    dag_id: str | None
    task_id: str | None
    run_id: str | None
    map_index: int | None
    url: str | None


class CallReport(TypedDict):
    """One recorded call. ``counted``: it uses one of the current window's calls."""

    id: str
    at: str
    done_at: str | None
    outcome: str
    request: str
    caller: Caller
    counted: bool
    in_window: bool


class ProjectReport(TypedDict, total=False):
    """One project's quota: the endpoint's ``projects[]`` item. ``error`` replaces the rest."""

    project_id: str
    variable_key: str
    settings: dict[str, Any]
    capacity: int
    used: int
    remaining: int
    next_reset: str | None
    window_start: str
    window_end: str
    exhausted_until: str | None
    degraded_until: str | None
    calls: list[CallReport]
    scheduled_today: ScheduledReport | None
    error: str


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC (``windows.utc.utc_iso``), or ``None``."""
    return None if moment is None else utc_iso(moment)


def parse_caller(label: str, ui_base: str = "") -> Caller:
    """Split ``dag_id/task_id/run_id/map_index`` and link it to the task instance page.

    Anything else (``outside-airflow``, a person's name) is returned as a label only; the
    split is ``quota.context.split_caller_label``, the inverse of the ledger's ``caller_label``.
    """
    parts = split_caller_label(label)
    if parts is None:
        return Caller(label=label, dag_id=None, task_id=None, run_id=None, map_index=None, url=None)
    dag_id, task_id, run_id, map_index = parts
    return Caller(
        label=label,
        dag_id=dag_id,
        task_id=task_id,
        run_id=run_id,
        map_index=map_index,
        url=task_instance_url(ui_base, dag_id, run_id, task_id, map_index),
    )


def _window(status: QuotaStatus) -> tuple[datetime, datetime]:
    """The span the timeline draws: the ledger's UTC day, or the rolling window ending now."""
    settings, now = status.settings, status.now
    if settings.window is Window.ROLLING:
        return now - settings.window_length, now
    return settings.window_start(now), settings.next_day_start(now)


def _horizon(status: QuotaStatus, end: datetime) -> datetime:
    """Until when scheduled calls count against the current window: the end of the ledger's
    UTC day, or one rolling window from now."""
    settings = status.settings
    return status.now + settings.window_length if settings.window is Window.ROLLING else end


def project_report(
    document: dict[str, Any],
    now: datetime,
    *,
    variable_key: str = "",
    ui_base: str = "",
    schedule: Schedule | None = None,
) -> ProjectReport:
    """Report one stored ledger document at ``now``; with ``schedule``, the calls still
    scheduled before the window ends (``scheduled_today``, else ``None``).

    :raises ClarityError: when the document is not a readable ledger.
    :raises ValueError: when its settings make no sense.
    """
    project_id = str(document.get("project_id") or variable_key.removeprefix(VARIABLE_PREFIX))
    ledger = QuotaLedger.from_document({**document, "project_id": project_id}, clock=lambda: now)
    status = ledger.status()
    start, end = _window(status)
    counted = {record.id for record in status.counted}
    records = sorted((*status.counted, *status.earlier), key=lambda r: r.at)  # all it keeps
    calls = [
        CallReport(
            id=record.id,
            at=utc_iso(record.at),
            done_at=iso(record.done_at),
            outcome=str(record.outcome),
            request=record.request,
            caller=parse_caller(record.caller, ui_base),
            counted=record.id in counted,
            in_window=start <= record.at <= end,
        )
        for record in records
    ]
    settings = status.settings
    scheduled = None
    if schedule is not None:
        scheduled = schedule.for_project(
            project_id,
            _horizon(status, end),
            status.remaining,
            [(r.caller, r.at) for r in records],
            ui_base=ui_base,
        )
    return ProjectReport(
        project_id=project_id,
        variable_key=variable_key or ledger.key,
        settings=settings.to_json(),
        capacity=settings.capacity,
        used=len(status.counted),
        remaining=status.remaining,
        next_reset=iso(status.next_reset),
        window_start=utc_iso(start),
        window_end=utc_iso(end),
        exhausted_until=iso(status.exhausted_until) if status.exhausted else None,
        degraded_until=iso(status.degraded_until) if status.degraded else None,
        calls=calls,
        scheduled_today=scheduled,
    )


def report(
    variables: Iterable[tuple[str, str | None]],
    now: datetime,
    *,
    ui_base: str = "",
    schedule: Schedule | None = None,
    schedule_error: str | None = None,
) -> dict[str, Any]:
    """Report every ``(key, value)`` ledger Variable; an unreadable one reports its error.

    With ``schedule``, a project that has scheduled exports but no ledger yet is reported
    too, from its connection's settings, with no call.
    """
    found = dict(variables)
    if schedule is not None:
        for project_id, task in schedule.projects().items():
            if task.settings is not None and ledger_key(project_id) not in found:
                empty = {"project_id": project_id, "settings": task.settings.to_json()}
                found[ledger_key(project_id)] = json.dumps(empty)
    projects: list[ProjectReport] = []
    for key, value in sorted(found.items()):
        try:
            document = json.loads(value or "null")
            if not isinstance(document, dict):
                raise ValueError("it is not a JSON object")
            projects.append(
                project_report(document, now, variable_key=key, ui_base=ui_base, schedule=schedule)
            )
        except Exception as err:  # one broken ledger must not hide the others
            projects.append(
                ProjectReport(
                    project_id=key.removeprefix(VARIABLE_PREFIX),
                    variable_key=key,
                    error=f"{type(err).__name__}: {err}",
                )
            )
    return {
        "generated_at": iso(now),
        "projects": projects,
        "schedule_error": schedule_error,
        "unresolved_exports": [] if schedule is None else schedule.unresolved(),
    }
