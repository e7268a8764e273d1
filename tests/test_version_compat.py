"""``version_compat``: the flags match the installed Airflow, and the names it hands out are the
very classes and functions that Airflow's task runner and scheduler use on that version."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from packaging.version import Version

from airflow_provider_clarity import version_compat


def test_flags_match_the_installed_airflow() -> None:
    import airflow

    version = Version(airflow.__version__)
    assert (version.major, version.minor, version.micro) == version_compat.AIRFLOW_VERSION
    assert version_compat.AIRFLOW_VERSION >= version_compat.MIN_AIRFLOW_VERSION
    assert (version >= Version("3.2.0")) == version_compat.AIRFLOW_V_3_2_PLUS
    assert (version >= Version("3.3.0")) == version_compat.AIRFLOW_V_3_3_PLUS


def test_the_task_runner_catches_the_exceptions_we_raise() -> None:
    """An exception from another module path would escape the runner's handlers: a reschedule
    would fail the task, a skip would count as a failure and be retried."""
    from airflow.sdk.execution_time import task_runner

    assert task_runner.AirflowRescheduleException is version_compat.AirflowRescheduleException
    exceptions = importlib.import_module(
        "airflow.sdk.exceptions" if version_compat.AIRFLOW_V_3_2_PLUS else "airflow.exceptions"
    )
    for name in ("AirflowSkipException", "AirflowFailException", "AirflowNotFoundException"):
        assert getattr(exceptions, name) is getattr(version_compat, name), name


def test_features_follow_the_version() -> None:
    import airflow.sdk.definitions.context as context

    has_store = "task_state_store" in getattr(context.Context, "__annotations__", {})
    assert has_store == version_compat.HAS_TASK_STATE_STORE


def test_dag_bag_names_resolve_lazily() -> None:
    bag_class = version_compat.DagBag
    assert bag_class.__name__ == "DagBag"
    assert callable(version_compat.sync_bag_to_db)
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        _ = version_compat.NoSuchThing


def _dag_row(run_after: datetime | None, interval: tuple[datetime, datetime] | None) -> Any:
    """A ``DagModel`` as the scheduler leaves it after planning the next run."""
    from airflow.models.dag import DagModel

    row = DagModel(dag_id="clarity_every_2h")
    row.next_dagrun_create_after = run_after
    row.next_dagrun_data_interval = interval
    row.next_dagrun = None if interval is None else interval[0]
    return row


def test_next_run_and_the_one_after_it_from_a_dag_row() -> None:
    """The quota page's schedule, as the scheduler sees it, on this version's timetable API."""
    from airflow.timetables.base import TimeRestriction
    from airflow.timetables.interval import CronDataIntervalTimetable

    timetable = CronDataIntervalTimetable("0 */2 * * *", UTC)
    start = datetime(2026, 12, 4, 8, tzinfo=UTC)
    row = _dag_row(start + timedelta(hours=2), (start, start + timedelta(hours=2)))
    first = version_compat.next_run_info(timetable, row)
    assert first is not None
    assert first.run_after == start + timedelta(hours=2)
    assert first.data_interval.start == start
    restriction = TimeRestriction(earliest=start - timedelta(days=1), latest=None, catchup=True)
    second = version_compat.following_run_info(timetable, first, restriction)
    assert second.run_after == start + timedelta(hours=4)


def test_no_next_run_when_the_row_plans_none() -> None:
    from airflow.timetables.interval import CronDataIntervalTimetable

    timetable = CronDataIntervalTimetable("@daily", UTC)
    assert version_compat.next_run_info(timetable, _dag_row(None, None)) is None
