"""What the planner sees of a task: ``TaskPlan``, and which tasks are Clarity's."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from airflow_provider_clarity.connection.settings import QuotaSettings
from airflow_provider_clarity.request import ClarityRequest


class TaskKind(StrEnum):
    """What a task is to the planner: an export, an expanded (mapped) export, or a derive."""

    EXPORT = "export"
    MAPPED = "mapped"
    DERIVE = "derive"


@dataclass
class TaskPlan:
    """One Clarity task as the planner sees it."""

    dag_id: str
    task_id: str
    kind: TaskKind  # EXPORT or DERIVE
    schedule: str
    runs: list[datetime] = field(default_factory=list)
    unknown_runs: bool = False
    project_id: str = ""
    settings: QuotaSettings | None = None
    host: str = ""
    request: ClarityRequest | None = None  # None: templated, known only at run time
    shareable: bool = False
    max_age: timedelta = timedelta(0)
    note: str = ""
    resolved: bool = True  # False: the connection was templated or could not be read

    @property
    def label(self) -> str:
        return f"{self.dag_id}.{self.task_id}"

    @property
    def breakdown(self) -> str:
        if self.request is None:
            return "(templated)"
        days = f" ({self.request.num_of_days} days)" if self.request.num_of_days > 1 else ""
        return (",".join(self.request.dimensions) or "no dimension") + days


#: What an export's serialized form (the api-server's view of a DAG) always carries.
_EXPORT_FIELDS = frozenset({"clarity_conn_id", "num_of_days", "dimensions", "raw_location"})
_DERIVE_FIELDS = frozenset({"source", "outputs"})


def task_kind(task: Any) -> TaskKind | None:
    """``EXPORT``, ``MAPPED`` (an expanded export), ``DERIVE`` or ``None`` (not ours).

    Works on the DAG file's operators and on the serialized ones the api-server reads from
    the metadata DB (which keep an operator's template fields, not its class): an export, or
    a subclass of one, is what has the export's template fields.
    """
    from airflow_provider_clarity.operators.derive import ClarityDeriveOperator
    from airflow_provider_clarity.operators.export import ClarityExportOperator

    if isinstance(task, ClarityExportOperator):
        return TaskKind.EXPORT
    if isinstance(task, ClarityDeriveOperator):
        return TaskKind.DERIVE
    cls = getattr(task, "operator_class", None)
    if isinstance(cls, type):  # a MappedOperator of a DAG file
        return TaskKind.MAPPED if issubclass(cls, ClarityExportOperator) else None
    # Airflow 3.1 deserializes a mapped task as airflow.models.MappedOperator, its class a dict.
    if not type(task).__name__.startswith("Serialized") and not isinstance(cls, dict):
        return None  # a DAG file's operator that is not ours
    fields = frozenset(getattr(task, "template_fields", ()) or ())
    if fields >= _EXPORT_FIELDS:
        return TaskKind.MAPPED if hasattr(task, "partial_kwargs") else TaskKind.EXPORT
    return (
        TaskKind.DERIVE
        if fields >= _DERIVE_FIELDS and not hasattr(task, "partial_kwargs")
        else None
    )
