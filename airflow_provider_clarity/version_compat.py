"""The one place that knows which Airflow this runs on (3.1, 3.2, 3.3) and where names moved.

Every other module imports the names below from here and never asks for Airflow's version
itself, as Airflow's own providers keep theirs in ``version_compat.py``. Names the common-compat
provider maps (``airflow.providers.common.compat.sdk``) come from there; the rest are chosen by
the flags, and each fallback names the versions that need it, so it can be deleted when they
are dropped. Heavy modules are imported only when a function here is called: DAG files import
this module.
"""

from __future__ import annotations

from typing import Any

from airflow import __version__ as _AIRFLOW_VERSION_TEXT
from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowNotFoundException,
    AirflowSkipException,
    BaseHook,
    TaskDeferred,
    conf,
)


def get_base_airflow_version_tuple() -> tuple[int, int, int]:
    """Airflow's version as ``(major, minor, micro)``, pre-release tags dropped."""
    from packaging.version import Version

    version = Version(_AIRFLOW_VERSION_TEXT)
    return version.major, version.minor, version.micro


AIRFLOW_VERSION = get_base_airflow_version_tuple()
#: The oldest Airflow this provider supports; the package's dependency range says the same.
MIN_AIRFLOW_VERSION = (3, 1, 0)
AIRFLOW_V_3_2_PLUS = AIRFLOW_VERSION >= (3, 2, 0)
AIRFLOW_V_3_3_PLUS = AIRFLOW_VERSION >= (3, 3, 0)

if AIRFLOW_V_3_2_PLUS:
    from airflow.sdk.exceptions import AirflowRescheduleException
else:  # 3.1: the Task SDK has it only in airflow.exceptions (not mapped by common-compat)
    from airflow.exceptions import AirflowRescheduleException

#: Whether provider metadata can declare ``airflow clarity ...`` commands (the ``cli`` key,
#: Airflow 3.2+); elsewhere the ``python -m airflow_provider_clarity...`` forms are the CLI.
HAS_PROVIDER_CLI = AIRFLOW_V_3_2_PLUS
#: Whether tasks get ``context["task_state_store"]`` (Airflow 3.3+).
HAS_TASK_STATE_STORE = AIRFLOW_V_3_3_PLUS
#: Whether the connection form is built from provider metadata ``conn-fields`` (3.2+). 3.1 only
#: reads wtforms-based hook methods, which this hook does not define: there the form shows the
#: standard fields and the extras go in the Extra JSON (docs/connection.md).
HAS_CONN_FIELDS = AIRFLOW_V_3_2_PLUS


_DAGBAG_NAMES = ("DagBag", "BundleDagBag", "sync_bag_to_db")


def __getattr__(name: str) -> Any:
    """``DagBag``, ``BundleDagBag`` and ``sync_bag_to_db``, imported when first asked for (the
    module is heavy, and DAG files import this one)."""
    if name not in _DAGBAG_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if AIRFLOW_V_3_2_PLUS:
        import airflow.dag_processing.dagbag as dagbag
    else:  # 3.1: they live in airflow.models.dagbag
        import airflow.models.dagbag as dagbag  # type: ignore[no-redef]
    return getattr(dagbag, name)


def dag_bag(dag_folder: str | None = None, **kwargs: Any) -> Any:
    """A ``DagBag`` over ``dag_folder`` (Airflow's ``[core] dags_folder`` when ``None``)."""
    return __getattr__("DagBag")(dag_folder=dag_folder, **kwargs)


def core_timetable(dag: Any) -> Any:
    """The scheduler-side timetable of a DAG as a DAG file or the serialized form defines it."""
    if AIRFLOW_V_3_2_PLUS:
        from airflow.serialization.encoders import coerce_to_core_timetable

        return coerce_to_core_timetable(dag.timetable)
    # 3.1: DAGs carry the core timetable object itself
    return dag.timetable


def next_run_info(timetable: Any, dag_model: Any) -> Any:
    """The scheduler's next run of a DAG (a ``DagRunInfo``), read from its ``DagModel`` row;
    ``None`` when none is planned."""
    if AIRFLOW_V_3_2_PLUS:
        return timetable.next_run_info_from_dag_model(dag_model=dag_model)
    # 3.1: no Timetable.next_run_info_from_dag_model; the same two facts, read the same way
    from airflow.models.dag import get_next_data_interval
    from airflow.timetables.base import DagRunInfo

    run_after = dag_model.next_dagrun_create_after  # a UtcDateTime column: aware already
    if run_after is None:
        return None
    return DagRunInfo(
        run_after=run_after, data_interval=get_next_data_interval(timetable, dag_model)
    )


def following_run_info(timetable: Any, last: Any, restriction: Any) -> Any:
    """The run after ``last`` (a ``DagRunInfo``) within ``restriction``; ``None`` past it."""
    if AIRFLOW_V_3_2_PLUS:
        return timetable.next_dagrun_info_v2(last_dagrun_info=last, restriction=restriction)
    # 3.1: only the data-interval form exists
    return timetable.next_dagrun_info(
        last_automated_data_interval=None if last is None else last.data_interval,
        restriction=restriction,
    )


def metrics_client() -> Any:
    """Airflow's metrics client, ``Stats``: StatsD, Datadog or OpenTelemetry as ``[metrics]``
    says, a no-op when metrics are off. Imported when first asked for (DAG files import this
    module); where it lives differs (the Task SDK's ``airflow.sdk.observability.stats`` on 3.3,
    ``airflow.observability.stats`` on 3.2, ``airflow.stats`` on 3.1), which common-compat maps.
    """
    from airflow.providers.common.compat.sdk import Stats

    return Stats


__all__ = [
    "AIRFLOW_VERSION",
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "HAS_CONN_FIELDS",
    "HAS_PROVIDER_CLI",
    "HAS_TASK_STATE_STORE",
    "MIN_AIRFLOW_VERSION",
    "AirflowException",
    "AirflowFailException",
    "AirflowNotFoundException",
    "AirflowRescheduleException",
    "AirflowSkipException",
    "BaseHook",
    "TaskDeferred",
    "conf",
    "core_timetable",
    "dag_bag",
    "following_run_info",
    "get_base_airflow_version_tuple",
    "metrics_client",
    "next_run_info",
]
