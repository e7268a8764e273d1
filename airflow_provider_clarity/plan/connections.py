"""An export's project, quota settings, host and sharing, resolved offline (no call)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow_provider_clarity.connection.settings import QuotaSettings
from airflow_provider_clarity.operators._arguments import is_literal
from airflow_provider_clarity.plan.tasks import TaskPlan
from airflow_provider_clarity.utils.storage import is_local_uri

# Executors whose workers all run on the scheduler's host: file:// is shared there.
_ONE_HOST_EXECUTORS = frozenset({"LocalExecutor", "SequentialExecutor", "DebugExecutor"})


def shareable(operator: Any, one_host: bool) -> tuple[bool, str]:
    """Whether the raw answer lands where other workers can read it, and why not."""
    where = operator.raw_location if operator.raw_location is not None else operator.destination
    if where is None:
        return False, "raw kept in the task state store: not shareable"
    text = str(where)
    if text.startswith("{{"):
        return False, "templated raw location: sharing not counted"
    if is_local_uri(text):
        if one_host:
            return True, ""
        return False, "file:// on worker disk with workers on several hosts: not counted"
    return True, ""


def executor_is_one_host() -> bool:
    from airflow.configuration import conf

    names = [n.strip().split(".")[-1] for n in conf.get("core", "executor").split(",")]
    return all(n in _ONE_HOST_EXECUTORS for n in names if n)


def resolve(task: TaskPlan, operator: Any, hooks: dict[str, Any]) -> None:
    """Project, quota settings and host of an export's connection: offline, no call."""
    from airflow_provider_clarity.hooks.clarity import ClarityHook

    conn_id = operator.clarity_conn_id
    if not is_literal(conn_id):
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
