"""One project's quota ledger as a JSON-ready report: what the page draws and the endpoint returns.

Counting rules stay in ``airflow_provider_clarity.quota``: remaining calls and the next reset
come from ``QuotaLedger``'s public methods, fed the stored document through a
``MemoryLedgerStore``. Whether one call counts in the current window is asked of a ledger
holding only that call, so this module never restates the window arithmetic.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

from airflow_provider_clarity.quota import VARIABLE_PREFIX, MemoryLedgerStore, QuotaLedger

# What a ledger document's ``settings`` may hold, i.e. the QuotaLedger constructor arguments.
_SETTING_NAMES = (
    "daily_limit",
    "reserve",
    "window",
    "rolling_window_seconds",
    "reset_margin_seconds",
)
# Moments a ledger document may carry that pause the project: a 429 (``exhausted_until``) and
# the "Clarity is degraded" cool-down (``degraded_until``) another change adds.
_PAUSE_KEYS = ("exhausted_until", "degraded_until")


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
    scheduled_today: None
    error: str


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC, or ``None``."""
    return None if moment is None else moment.astimezone(UTC).isoformat()


def parse_caller(label: str, ui_base: str = "") -> Caller:
    """Split ``dag_id/task_id/run_id/map_index`` and link it to the task instance page.

    Anything else (``outside-airflow``, a person's name) is returned as a label only. Run ids
    may hold ``/``; dag and task ids cannot.
    """
    parts = label.split("/", 2)
    if len(parts) == 3 and "/" in parts[2]:
        run_id, _, index = parts[2].rpartition("/")
        if run_id and index.lstrip("-").isdigit():
            from urllib.parse import quote

            dag_id, task_id, map_index = parts[0], parts[1], int(index)
            url = f"{ui_base}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
            url += f"/tasks/{quote(task_id, safe='')}"
            if map_index >= 0:
                url += f"/mapped/{map_index}"
            return Caller(
                label=label,
                dag_id=dag_id,
                task_id=task_id,
                run_id=run_id,
                map_index=map_index,
                url=url,
            )
    return Caller(label=label, dag_id=None, task_id=None, run_id=None, map_index=None, url=None)


def _moment(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _ledger(
    project_id: str, settings: dict[str, Any], document: dict[str, Any] | None, now: datetime
) -> QuotaLedger:
    return QuotaLedger(
        project_id,
        store=MemoryLedgerStore(document),
        clock=lambda: now,
        **{k: settings[k] for k in _SETTING_NAMES if k in settings},
    )


def _counts_now(
    project_id: str, settings: dict[str, Any], call: dict[str, Any], now: datetime
) -> bool:
    # A ledger holding only this call, with no reserve, has one call fewer exactly when the
    # call counts now: the ledger's own rule decides (window, margin, 401/403 not charged).
    probe = _ledger(project_id, {**settings, "reserve": 0}, {"calls": [call]}, now)
    return probe.remaining() < probe.capacity


def _window(ledger: QuotaLedger, now: datetime) -> tuple[datetime, datetime]:
    """The span the timeline draws: today in UTC, or the rolling window ending now."""
    if ledger.window == "rolling":
        return now - timedelta(seconds=ledger.rolling_window_seconds), now
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def project_report(
    document: dict[str, Any], now: datetime, *, variable_key: str = "", ui_base: str = ""
) -> ProjectReport:
    """Report one stored ledger document at ``now``.

    :raises ClarityError: when the document is not a readable ledger.
    :raises ValueError: when its settings make no sense.
    """
    project_id = str(document.get("project_id") or variable_key.removeprefix(VARIABLE_PREFIX))
    settings = dict(document.get("settings") or {})
    ledger = _ledger(project_id, settings, document, now)
    start, end = _window(ledger, now)
    raw_calls = [c for c in document.get("calls") or [] if isinstance(c, dict)]
    calls: list[CallReport] = []
    for raw, entry in zip(
        sorted(raw_calls, key=lambda c: _moment(c.get("at")) or now), ledger.entries(), strict=False
    ):
        at: datetime = entry["at"]
        calls.append(
            CallReport(
                id=entry["id"],
                at=iso(at) or "",
                done_at=iso(entry["done_at"]),
                outcome=entry["outcome"],
                request=entry["request"],
                caller=parse_caller(entry["caller"], ui_base),
                counted=_counts_now(project_id, settings, raw, now),
                in_window=start <= at <= end,
            )
        )
    remaining = ledger.remaining()
    try:
        next_reset: str | None = iso(ledger.next_reset())
    except ValueError:  # the reserve keeps every call: no call ever becomes available
        next_reset = None
    pauses = {key: _moment(document.get(key)) for key in _PAUSE_KEYS}
    return ProjectReport(
        project_id=project_id,
        variable_key=variable_key or ledger.key,
        settings={k: getattr(ledger, k) for k in _SETTING_NAMES},
        capacity=ledger.capacity,
        used=sum(c["counted"] for c in calls),
        remaining=remaining,
        next_reset=next_reset,
        window_start=iso(start) or "",
        window_end=iso(end) or "",
        exhausted_until=iso(m) if (m := pauses["exhausted_until"]) and m > now else None,
        degraded_until=iso(m) if (m := pauses["degraded_until"]) and m > now else None,
        calls=calls,
        scheduled_today=None,
    )


def report(
    variables: Iterable[tuple[str, str | None]], now: datetime, *, ui_base: str = ""
) -> dict[str, Any]:
    """Report every ``(key, value)`` ledger Variable; an unreadable one reports its error."""
    projects: list[ProjectReport] = []
    for key, value in sorted(variables):
        try:
            document = json.loads(value or "null")
            if not isinstance(document, dict):
                raise ValueError("it is not a JSON object")
            projects.append(project_report(document, now, variable_key=key, ui_base=ui_base))
        except Exception as err:  # one broken ledger must not hide the others
            projects.append(
                ProjectReport(
                    project_id=key.removeprefix(VARIABLE_PREFIX),
                    variable_key=key,
                    error=f"{type(err).__name__}: {err}",
                )
            )
    return {"generated_at": iso(now), "projects": projects}
