"""The example DAGs in ``example_dags/``: they parse cleanly, and each runs end to end.

Each run is a ``dag.test()`` against the Clarity emulator (a real HTTP server on 127.0.0.1)
with a project of its own, so the Variable-backed quota ledgers of different tests never
meet in the shared test DB. ``clarity_to_s3`` writes to moto's S3 server on loopback.
"""

from __future__ import annotations

import copy
import io
import json
import re
import runpy
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider_clarity.operators.export import PARTITION_DAY, ClarityExportOperator
from airflow_provider_clarity.quota import ledger_key
from airflow_provider_clarity.testing.emulator import ClarityEmulator
from airflow_provider_clarity.windows.partition import day_for
from tests.conftest import REPO_ROOT, S3_BUCKET

EXAMPLE_DAGS = REPO_ROOT / "example_dags"
EXPECTED_DAG_IDS = {"clarity_daily_snapshot", "clarity_to_xcom", "clarity_to_s3"}
DEVICES = {"PC", "Mobile", "Tablet", "Other"}
CLARITY_DAILY_LIMIT = 10


@pytest.fixture(scope="module")
def example_bag(airflow_db: Path) -> Any:
    """One DagBag over the example_dags folder, as a user's dag-processor would parse it."""
    from airflow_provider_clarity.version_compat import DagBag

    return DagBag(dag_folder=str(EXAMPLE_DAGS))


@pytest.fixture
def project(
    clarity_emulator: ClarityEmulator, airflow_db: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A fresh Clarity project; ``clarity_default`` points at it on the emulator.

    Its quota ledger (an Airflow Variable) is removed before and after the test.
    """
    from airflow.models.variable import Variable

    project_id = f"example-{uuid.uuid4().hex[:12]}"
    token = clarity_emulator.issue_token(project_id)
    monkeypatch.setenv(
        "AIRFLOW_CONN_CLARITY_DEFAULT",
        clarity_emulator.airflow_conn_json(token, project_id=project_id),
    )
    Variable.delete(ledger_key(project_id))
    yield project_id
    Variable.delete(ledger_key(project_id))


def _export_tasks(dag: Any) -> list[ClarityExportOperator]:
    return [task for task in dag.tasks if isinstance(task, ClarityExportOperator)]


def _ds(run: Any) -> str:
    """The partition the example DAGs write: ``{{ clarity_day }}`` (partition.py's rule)."""
    return day_for(run.run_after).isoformat()


# ------------------------------------------------------------------ parsing


def test_example_dags_import_without_errors(example_bag: Any) -> None:
    assert example_bag.import_errors == {}
    assert set(example_bag.dag_ids) == EXPECTED_DAG_IDS


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAG_IDS))
def test_example_dag_settings(example_bag: Any, dag_id: str) -> None:
    dag = example_bag.get_dag(dag_id)

    assert set(dag.tags) == {"clarity", "example"}
    # Clarity keeps no history: catching up would only produce skipped runs.
    assert dag.catchup is False
    exports = _export_tasks(dag)
    assert exports, f"{dag_id} has no ClarityExportOperator task"
    assert {task.task_id: task.pool for task in exports} == {
        task.task_id: "clarity_api" for task in exports
    }


def test_daily_snapshot_stays_within_the_daily_quota(example_bag: Any) -> None:
    breakdowns = runpy.run_path(str(EXAMPLE_DAGS / "clarity_daily_snapshot.py"))["BREAKDOWNS"]
    dag = example_bag.get_dag("clarity_daily_snapshot")

    exports = _export_tasks(dag)

    # One task is one call a day; retries of a task reuse its kept raw snapshot.
    assert len(exports) == len(breakdowns) <= CLARITY_DAILY_LIMIT
    assert {task.task_id: list(task.dimensions) for task in exports} == breakdowns
    assert all(task.num_of_days == 1 for task in exports)


# ------------------------------------------------------------------ end to end with dag.test()


def test_daily_snapshot_writes_partitioned_parquet_with_raw_beside_it(
    clarity_emulator: ClarityEmulator,
    project: str,
    run_dag: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = tmp_path / "clarity"
    monkeypatch.setenv("AIRFLOW_VAR_CLARITY_EXPORT_BASE", base.as_uri())

    run = run_dag(
        EXAMPLE_DAGS / "clarity_daily_snapshot.py",
        "clarity_daily_snapshot",
        logical_date=datetime.now(UTC),
    )

    assert run.state == "success"
    partition = base / f"dt={_ds(run)}"
    names = ["snapshot", "by_os", "by_device", "by_country_device", "by_url"]
    assert sorted(p.name for p in partition.iterdir()) == sorted(
        [f"{name}.parquet" for name in names] + [f"{name}.raw.json" for name in names]
    )
    frames = {name: pd.read_parquet(partition / f"{name}.parquet") for name in names}
    for name, frame in frames.items():
        assert len(frame) > 0, name
        raw = json.loads((partition / f"{name}.raw.json").read_text())
        assert sum(len(block["information"]) for block in raw["response"]) == len(frame), name

    snapshot = frames["snapshot"]
    assert snapshot["metric"].nunique() == 16
    assert str(snapshot["total_session_count"].dtype) == "Int64"
    assert snapshot["total_session_count"].notna().any()
    assert frames["by_url"]["url"].notna().sum() > 0
    assert frames["by_os"]["os"].notna().any()
    assert {"country", "device"} <= set(frames["by_country_device"].columns)
    assert set(frames["by_device"]["device"].dropna()) <= DEVICES
    assert clarity_emulator.calls(project) == 5


def test_to_xcom_computes_the_rage_click_rate_per_device(
    clarity_emulator: ClarityEmulator, project: str, run_dag: Any
) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    run = run_dag(
        EXAMPLE_DAGS / "clarity_to_xcom.py", "clarity_to_xcom", logical_date=datetime.now(UTC)
    )

    assert run.state == "success"
    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(
                dag_id="clarity_to_xcom",
                run_id=run.run_id,
                task_id="rage_click_rate",
                key="return_value",
            )
            .one()
        )
        value = row.value
    rates = json.loads(value) if isinstance(value, str) else value

    # Computed from the emulator's own answer, not through the provider's normaliser.
    [block] = [
        block
        for block in clarity_emulator.payload(project, dimensions=("Device",))
        if block["metricName"] == "RageClickCount"
    ]
    expected = {
        item["Device"]: float(item["sessionsWithMetricPercentage"])
        for item in block["information"]
        if item.get("Device") is not None and item.get("sessionsWithMetricPercentage") is not None
    }
    assert expected, "the emulator served no rage-click rows by device"
    assert isinstance(rates, dict)
    assert set(rates) <= DEVICES
    assert rates == pytest.approx(expected)
    assert all(isinstance(rate, float) for rate in rates.values())
    assert clarity_emulator.calls(project) == 1


def test_to_s3_writes_parquet_and_raw_json_to_the_bucket(
    clarity_emulator: ClarityEmulator,
    project: str,
    run_dag: Any,
    s3: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_CLARITY_S3_BUCKET", S3_BUCKET)

    run = run_dag(
        EXAMPLE_DAGS / "clarity_to_s3.py", "clarity_to_s3", logical_date=datetime.now(UTC)
    )

    assert run.state == "success"
    prefix = f"clarity/dt={_ds(run)}"
    keys = sorted(item["Key"] for item in s3.list_objects_v2(Bucket=S3_BUCKET)["Contents"])
    assert keys == [f"{prefix}/by_os.parquet", f"{prefix}/by_os.raw.json"]
    body = s3.get_object(Bucket=S3_BUCKET, Key=f"{prefix}/by_os.parquet")["Body"].read()
    frame = pd.read_parquet(io.BytesIO(body))
    raw = json.loads(s3.get_object(Bucket=S3_BUCKET, Key=f"{prefix}/by_os.raw.json")["Body"].read())
    assert raw["request"] == {"numOfDays": "1", "dimension1": "OS"}
    assert len(frame) == sum(len(block["information"]) for block in raw["response"]) > 0
    assert frame["os"].notna().any()
    assert clarity_emulator.calls(project) == 1


# ------------------------------------------------------------------ every run type renders


def _run_of_type(dag: Any, run_type: str) -> Any:
    """The DagRun a worker receives for ``run_type``, dated as the scheduler dates it."""
    from airflow.sdk.api.datamodels._generated import DagRun, DagRunState, DagRunType
    from airflow.timetables.base import TimeRestriction

    from airflow_provider_clarity.version_compat import core_timetable

    now = datetime.now(UTC)
    due = core_timetable(dag).next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=dag.start_date, latest=None, catchup=False),
    )
    if run_type in ("manual_no_logical_date", "asset_triggered"):
        # `airflow dags trigger`, the REST API and asset events leave the logical date empty.
        logical, start, end, run_after = None, None, None, now
    elif run_type == "manual_ui":
        logical, start, end, run_after = now, now, now, now
    else:  # scheduled and backfill: the timetable's dates (a backfill's are in the past)
        logical = due.logical_date if run_type == "scheduled" else datetime(2026, 1, 5, tzinfo=UTC)
        start, end = due.data_interval if run_type == "scheduled" else (logical, logical)
        run_after = due.run_after if run_type == "scheduled" else logical
    kind = {"manual_no_logical_date": "manual", "manual_ui": "manual"}.get(run_type, run_type)
    # Partitioned runs arrived in Airflow 3.2; 3.1's DagRun model refuses the field.
    partition = {"partition_key": None} if "partition_key" in DagRun.model_fields else {}
    return DagRun(
        dag_id=dag.dag_id,
        run_id=f"{kind}__{run_type}",
        logical_date=logical,
        data_interval_start=start,
        data_interval_end=end,
        run_after=run_after,
        start_date=now,
        end_date=None,
        run_type=DagRunType(kind),
        state=DagRunState.RUNNING,
        consumed_asset_events=[],
        **partition,
    )


RUN_TYPES = ["scheduled", "manual_ui", "manual_no_logical_date", "asset_triggered", "backfill"]


@pytest.mark.parametrize("run_type", RUN_TYPES)
@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAG_IDS))
def test_every_templated_field_renders_for_every_run_type(
    example_bag: Any, dag_id: str, run_type: str
) -> None:
    import uuid as uuid_module

    from airflow.sdk.api.datamodels._generated import TIRunContext
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    dag = example_bag.get_dag(dag_id)
    run = _run_of_type(dag, run_type)
    for parsed in _export_tasks(dag):
        task = copy.deepcopy(parsed)  # rendering writes into the task: keep the bag's intact
        ti = RuntimeTaskInstance.model_construct(
            id=uuid_module.uuid4(),
            task_id=task.task_id,
            dag_id=dag.dag_id,
            run_id=run.run_id,
            try_number=1,
            map_index=-1,
            task=task,
            start_date=run.start_date,
            max_tries=0,
            _ti_context_from_server=TIRunContext(dag_run=run, max_tries=0),
        )
        task.render_template_fields(ti.get_template_context())

        if task.destination is not None:
            # The partition rule: the day the snapshot covers (partition.day_for).
            assert f"/dt={day_for(run.run_after).isoformat()}/" in str(task.destination)
            assert "{{" not in str(task.destination)


def test_daily_snapshot_runs_without_a_logical_date(
    clarity_emulator: ClarityEmulator,
    project: str,
    run_dag: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`airflow dags trigger` and the REST API start runs like this one: no logical date."""
    base = tmp_path / "clarity"
    monkeypatch.setenv("AIRFLOW_VAR_CLARITY_EXPORT_BASE", base.as_uri())

    run = run_dag(
        EXAMPLE_DAGS / "clarity_daily_snapshot.py", "clarity_daily_snapshot", logical_date=None
    )

    assert run.logical_date is None
    assert run.state == "success"
    partition = base / f"dt={day_for(run.run_after).isoformat()}"  # the partition rule
    assert sorted(p.name for p in partition.glob("*.parquet")) == sorted(
        f"{name}.parquet"
        for name in ("snapshot", "by_os", "by_device", "by_country_device", "by_url")
    )
    assert clarity_emulator.calls(project) == 5


# ------------------------------------------------------------------ one date expression

DOCUMENTED = sorted(
    [
        *(REPO_ROOT / "docs").glob("*.md"),
        REPO_ROOT / "README.md",
        *EXAMPLE_DAGS.glob("*.py"),
        REPO_ROOT / "airflow_provider_clarity/operators/export.py",
        REPO_ROOT / "airflow_provider_clarity/request.py",
    ]
)
# Context names Airflow leaves undefined in a run without a logical date.
_NEEDS_LOGICAL_DATE = re.compile(
    r"\b(ds|ds_nodash|ts|ts_nodash|ts_nodash_with_tz|logical_date|data_interval_start|"
    r"data_interval_end|prev_ds|next_ds|execution_date)\b"
)


@pytest.mark.parametrize("path", DOCUMENTED, ids=lambda p: p.name)
def test_documented_templates_date_partitions_with_partition_day(path: Path) -> None:
    """Every template users may copy renders in every run type, and dates the same way.

    In Markdown, that is the Python code blocks (the prose may name ``{{ ds }}`` to warn).
    """
    text = path.read_text()
    if path.suffix == ".md":
        text = "\n".join(re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL))
    for expression in re.findall(r"\{\{.*?\}\}", text):
        bare = expression.replace(PARTITION_DAY[3:-3], "").replace("{{{{", "{{")
        assert not _NEEDS_LOGICAL_DATE.search(bare), f"{path.name}: {expression}"
