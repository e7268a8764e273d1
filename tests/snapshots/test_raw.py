"""Where a task instance keeps its raw answer when it has no destination: Airflow 3.3's task
state store, or on 3.1 and 3.2 (which have none) an Airflow Variable of its own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_clarity.snapshots.raw import (
    RAW_VARIABLE_PREFIX,
    RawSnapshot,
    TaskStateSnapshotStore,
    UnkeptSnapshotStore,
    VariableSnapshotStore,
    raw_variable_key,
    store_for_task,
)
from airflow_provider_clarity.version_compat import HAS_TASK_STATE_STORE


def _ti(run_id: str = "manual__2026-12-04T06:00:00+00:00", map_index: int = -1) -> Any:
    return SimpleNamespace(
        dag_id="clarity_daily", run_id=run_id, task_id="by_os", map_index=map_index, try_number=1
    )


def _snapshot() -> RawSnapshot:
    return RawSnapshot(
        request={"numOfDays": "1", "dimension1": "OS"},
        project_id="demo-project",
        exported_at=datetime(2026, 12, 4, 6, 0, 3, tzinfo=UTC),
        response=[{"metricName": "Traffic", "information": [{"OS": "iOS", "sessionsCount": "3"}]}],
        host="http://127.0.0.1:1",
    )


@pytest.fixture
def raw_variables(airflow_db: Path) -> Iterator[list[str]]:
    """Keys of raw-answer Variables a test writes, deleted afterwards."""
    from airflow.models.variable import Variable

    keys: list[str] = []
    yield keys
    for key in keys:
        Variable.delete(key)


def test_each_task_instance_has_its_own_variable_key() -> None:
    keys = {
        raw_variable_key(_ti()),
        raw_variable_key(_ti(map_index=0)),
        raw_variable_key(_ti(map_index=1)),
        raw_variable_key(_ti(run_id="scheduled__2026-12-04T00:05:00+00:00")),
    }
    assert len(keys) == 4
    assert all(key.startswith(f"{RAW_VARIABLE_PREFIX}clarity_daily__") for key in keys)
    assert raw_variable_key(_ti()) == raw_variable_key(_ti())  # a retry finds the same key
    long_ti = SimpleNamespace(dag_id="d" * 250, run_id="r" * 250, task_id="t" * 250, map_index=-1)
    assert len(raw_variable_key(long_ti)) <= 250  # Airflow's limit for a Variable key


def test_a_variable_keeps_the_answer_across_tries(raw_variables: list[str]) -> None:
    ti = _ti()
    raw_variables.append(raw_variable_key(ti))
    store = VariableSnapshotStore(ti, task_label="clarity_daily/by_os")
    assert store.load() is None

    store.save(_snapshot())

    again = VariableSnapshotStore(ti, task_label="clarity_daily/by_os")  # the next try
    assert again.load() == _snapshot()
    assert raw_variable_key(ti) in again.location


def test_a_variable_that_is_not_a_raw_answer_is_ignored(
    raw_variables: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    from airflow.models.variable import Variable

    ti = _ti(map_index=3)
    raw_variables.append(raw_variable_key(ti))
    store = VariableSnapshotStore(ti, task_label="clarity_daily/by_os")
    for value in ("not json {", '{"format": "something-else"}'):
        Variable.set(raw_variable_key(ti), value)
        assert store.load() is None
    assert "is not a clarity-raw/1 raw snapshot" in caplog.text


def test_without_a_destination_the_store_follows_the_airflow_version() -> None:
    context: dict[str, Any] = {"ti": _ti()}
    store = store_for_task(context, raw_location=None, destination=None)
    if HAS_TASK_STATE_STORE:
        # 3.3 always has the state store in a task's context; without it nothing is kept.
        assert isinstance(store, UnkeptSnapshotStore)
        accessor = SimpleNamespace(get=lambda key: None, set=lambda key, value: None)
        with_store = store_for_task(
            {**context, "task_state_store": accessor}, raw_location=None, destination=None
        )
        assert isinstance(with_store, TaskStateSnapshotStore)
    else:
        assert isinstance(store, VariableSnapshotStore)
    assert isinstance(store_for_task({}, raw_location=None, destination=None), UnkeptSnapshotStore)
