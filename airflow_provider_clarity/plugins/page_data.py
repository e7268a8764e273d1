"""One project's quota ledger as a JSON-ready report: what the page draws and the endpoint returns.

Counting rules stay in ``airflow_provider_clarity.quota``: everything counted here comes
from ``QuotaLedger.status()``, so this module never restates the window arithmetic. A
ledger is counted with the settings the exports use: its project's clarity connection's
(``connection.known``), else the ones its document stores (``settings_source`` says which).

One rule for DAGs the user may not read (``readable``): they are never named or linked, and
their calls are always counted, since the quota is shared. A call of such a DAG shows as a
"hidden DAG" caller; a project that only such DAGs use (no other caller, no other scheduled
export) is left out, and ``hidden_projects`` counts it. What the page shows is bounded: the
newest ``MAX_CALLS`` calls of a project, ``PER_PAGE`` projects a page.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

from airflow_provider_clarity.connection.known import ProjectSettings
from airflow_provider_clarity.connection.settings import QuotaSettings, Window
from airflow_provider_clarity.plugins.quota_schedule import ScheduledReport, task_instance_url
from airflow_provider_clarity.quota import VARIABLE_PREFIX, QuotaLedger, QuotaStatus, ledger_key
from airflow_provider_clarity.quota.context import split_caller_label
from airflow_provider_clarity.windows.utc import utc_iso

if TYPE_CHECKING:
    from airflow_provider_clarity.plugins.quota_schedule import Schedule

#: Calls of one project the report lists: the newest ones (``calls_not_shown`` counts the rest).
MAX_CALLS = 200
#: Projects on one page of the report (``?page=N``).
PER_PAGE = 50
#: Marks the stand-in document of a project that has no ledger Variable yet: an object no
#: stored JSON can hold, so a planted key cannot make a real ledger read as empty.
_NO_LEDGER = "_no_ledger_yet"
_UNWRITTEN = object()
#: What a call of a DAG the user may not read shows as its caller.
HIDDEN_CALLER = "hidden DAG"


class Caller(TypedDict):
    """Who made a call; ``url`` is the task instance page when the caller is a task.
    ``hidden``: a DAG the user may not read (label ``HIDDEN_CALLER``, nothing else)."""

    label: str
    dag_id: str | None
    task_id: str | None
    run_id: str | None
    map_index: int | None
    url: str | None
    hidden: bool


class SettingsSource(TypedDict):
    """Where the settings a project is counted with come from.

    ``kind``: ``connection`` (what its exports use), ``stored`` (no connection names the
    project: the last task's, from the document) or ``default``. ``stored_differ``: the
    document stores other settings than the ones shown.
    """

    kind: str
    detail: str
    stored_differ: bool


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
    settings_source: SettingsSource
    capacity: int
    used: int
    remaining: int
    next_reset: str | None
    window_start: str
    window_end: str
    exhausted_until: str | None
    degraded_until: str | None
    calls: list[CallReport]
    calls_not_shown: int
    scheduled_today: ScheduledReport | None
    error: str


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC (``windows.utc.utc_iso``), or ``None``."""
    return None if moment is None else utc_iso(moment)


def parse_caller(label: str, ui_base: str = "", readable: Collection[str] | None = None) -> Caller:
    """Split ``dag_id/task_id/run_id/map_index`` and link it to the task instance page.

    Anything else (``outside-airflow``, a person's name) is returned as a label only; the
    split is ``quota.context.split_caller_label``, the inverse of the ledger's ``caller_label``.
    A DAG not in ``readable`` (``None``: all) is not named: ``HIDDEN_CALLER``.
    """
    parts = split_caller_label(label)
    if parts is None:
        return Caller(
            label=label, dag_id=None, task_id=None, run_id=None, map_index=None, url=None,
            hidden=False,
        )  # fmt: skip
    dag_id, task_id, run_id, map_index = parts
    if readable is not None and dag_id not in readable:
        return Caller(
            label=HIDDEN_CALLER, dag_id=None, task_id=None, run_id=None, map_index=None,
            url=None, hidden=True,
        )  # fmt: skip
    return Caller(
        label=label,
        dag_id=dag_id,
        task_id=task_id,
        run_id=run_id,
        map_index=map_index,
        url=task_instance_url(ui_base, dag_id, run_id, task_id, map_index),
        hidden=False,
    )


class _Document:
    """A read-only ledger store over an already parsed document (no copy: nothing writes)."""

    def __init__(self, document: dict[str, Any] | None) -> None:
        self.document = document

    def load(self) -> dict[str, Any] | None:
        return self.document

    def save(self, data: dict[str, Any]) -> None:
        raise TypeError("the quota page never writes a ledger")


def _settings(
    project_id: str, document: dict[str, Any], named: ProjectSettings | None
) -> tuple[QuotaSettings, SettingsSource]:
    """The settings to count ``document`` with, and where they come from.

    :raises ValueError: stored settings that make no sense (when no connection names it).
    """
    raw = document.get("settings")
    if named is not None:
        differ = isinstance(raw, dict) and any(
            raw.get(k, v) != v for k, v in named.settings.to_json().items()
        )
        source = SettingsSource(kind="connection", detail=named.describe(), stored_differ=differ)
        return named.settings, source
    stored = QuotaSettings.from_stored(project_id, raw)
    if stored is None:
        detail = (
            "no clarity connection Airflow can list names this project, and its ledger stores "
            "no settings: Clarity's defaults"
        )
        return QuotaSettings(project_id), SettingsSource(
            kind="default", detail=detail, stored_differ=False
        )
    detail = (
        "no clarity connection Airflow can list names this project: the settings the last "
        "task stored in its ledger (an export counts with its own connection's)"
    )
    return stored, SettingsSource(kind="stored", detail=detail, stored_differ=False)


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
    connection: ProjectSettings | None = None,
    readable: Collection[str] | None = None,
) -> ProjectReport:
    """Report one stored ledger document at ``now``, counted with ``connection``'s settings
    (those of the connections naming its project), else the ones it stores; with
    ``schedule``, the calls still scheduled before the window ends (``scheduled_today``,
    else ``None``). Only DAGs in ``readable`` (``None``: all) are named.

    :raises ClarityError: when the document is not a readable ledger.
    :raises ValueError: when its settings make no sense.
    """
    project_id = str(document.get("project_id") or variable_key.removeprefix(VARIABLE_PREFIX))
    document = {**document, "project_id": project_id}
    quota_settings, source = _settings(project_id, document, connection)
    # A project known from a connection or an export only has no document to read yet.
    stored = None if document.get(_NO_LEDGER) is _UNWRITTEN else document
    ledger = QuotaLedger.from_settings(quota_settings, store=_Document(stored), clock=lambda: now)
    status = ledger.status()
    start, end = _window(status)
    counted = {record.id for record in status.counted}
    records = sorted((*status.counted, *status.earlier), key=lambda r: r.at)  # all it keeps
    shown = records[-MAX_CALLS:]
    calls = [
        CallReport(
            id=record.id,
            at=utc_iso(record.at),
            done_at=iso(record.done_at),
            outcome=str(record.outcome),
            request=record.request,
            caller=parse_caller(record.caller, ui_base, readable),
            counted=record.id in counted,
            in_window=start <= record.at <= end,
        )
        for record in shown
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
        settings_source=source,
        capacity=settings.capacity,
        used=len(status.counted),
        remaining=status.remaining,
        next_reset=iso(status.next_reset),
        window_start=utc_iso(start),
        window_end=utc_iso(end),
        exhausted_until=iso(status.exhausted_until) if status.exhausted else None,
        degraded_until=iso(status.degraded_until) if status.degraded else None,
        calls=calls,
        calls_not_shown=len(records) - len(shown),
        scheduled_today=scheduled,
    )


def _dag_ids(document: Any) -> set[str]:
    """The DAGs whose tasks called, from a document's raw caller labels."""
    calls = document.get("calls") if isinstance(document, dict) else None
    found = set()
    for call in calls if isinstance(calls, list) else ():
        caller = call.get("caller") if isinstance(call, dict) else None
        if isinstance(caller, str) and (parts := split_caller_label(caller)) is not None:
            found.add(parts[0])
    return found


def _connections(
    connections: Mapping[str, ProjectSettings] | None, schedule: Schedule | None
) -> dict[str, ProjectSettings]:
    """Each project's connection settings: the listed connections', else those of the
    connection a scheduled export resolved (a secrets backend's, which cannot be listed)."""
    found = dict(connections or {})
    if schedule is not None:
        for project_id, task in schedule.projects().items():
            if project_id not in found and task.settings is not None:
                label = f"the connection of export {task.dag_id} / {task.task_id}"
                found[project_id] = ProjectSettings(task.settings, (label,))
    return found


def report(
    variables: Iterable[tuple[str, str | None]],
    now: datetime,
    *,
    ui_base: str = "",
    schedule: Schedule | None = None,
    schedule_error: str | None = None,
    connections: Mapping[str, ProjectSettings] | None = None,
    readable: Collection[str] | None = None,
    page: int = 1,
    pool_fault: str | None = None,
) -> dict[str, Any]:
    """Report page ``page`` (``PER_PAGE`` projects, by Variable key) of every ``(key, value)``
    ledger Variable; an unreadable one reports its error.

    ``connections``: each project's connection settings (``connection.known.by_project``),
    which its ledger is counted with. A project with a connection or a scheduled export
    (``schedule``) but no ledger yet is reported too, with no call. ``readable``: the DAGs
    the user may read (default: the schedule's; ``None``: all), see the module's rule.
    ``pool_fault``: ``quota.context.pool_fault()``, shown as a fault.
    """
    found = dict(variables)
    named = _connections(connections, schedule)
    unwritten: set[str] = set()
    for project_id in named:
        if ledger_key(project_id) not in found:
            found[ledger_key(project_id)] = json.dumps({"project_id": project_id})
            unwritten.add(ledger_key(project_id))
    if readable is None and schedule is not None:
        readable = schedule.readable
    shown: list[tuple[str, Any, Exception | None]] = []
    hidden = 0
    for key, value in sorted(found.items()):
        try:
            document = json.loads(value or "null")
            if not isinstance(document, dict):
                raise ValueError("it is not a JSON object")
        except Exception as err:  # one broken ledger must not hide the others
            shown.append((key, None, err))
            continue
        if key in unwritten:
            document[_NO_LEDGER] = _UNWRITTEN
        if readable is not None:
            project_id = str(document.get("project_id") or key.removeprefix(VARIABLE_PREFIX))
            dags = _dag_ids(document)
            if schedule is not None:
                dags |= {t.dag_id for t in schedule.tasks if t.project_id == project_id}
            if dags and dags.isdisjoint(readable):
                hidden += 1
                continue
        shown.append((key, document, None))
    pages = max(1, -(-len(shown) // PER_PAGE))
    projects: list[ProjectReport] = []
    for key, document, error in shown[(page - 1) * PER_PAGE : page * PER_PAGE]:
        project_id = key.removeprefix(VARIABLE_PREFIX)
        if document is not None:
            project_id = str(document.get("project_id") or project_id)
            try:
                projects.append(
                    project_report(
                        document,
                        now,
                        variable_key=key,
                        ui_base=ui_base,
                        schedule=schedule,
                        connection=named.get(project_id),
                        readable=readable,
                    )
                )
                continue
            except Exception as err:  # one broken ledger must not hide the others
                error = err
        projects.append(
            ProjectReport(
                project_id=project_id, variable_key=key, error=f"{type(error).__name__}: {error}"
            )
        )
    return {
        "generated_at": iso(now),
        "pool_fault": pool_fault,
        "page": page,
        "pages": pages,
        "per_page": PER_PAGE,
        "projects_total": len(shown),
        "hidden_projects": hidden,
        "projects": projects,
        "schedule_error": schedule_error,
        "unresolved_exports": [] if schedule is None else schedule.unresolved(),
    }
