"""Shared snapshots: exports asking the same request within max_snapshot_age spend one call.

Against the Clarity emulator over HTTP; most tests call ``execute`` with an in-memory index,
the last runs three DAGs with ``dag.test()`` and the real Variable-backed index.
"""

from __future__ import annotations

import json
import socket
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_clarity.connection.settings import QuotaSettings
from airflow_provider_clarity.exceptions import (
    ClarityDimensionFallbackError,
    ClarityError,
    ClarityRequestError,
)
from airflow_provider_clarity.operators.export import ClarityExportOperator
from airflow_provider_clarity.quota import MemoryLedgerStore, QuotaLedger, ledger_key
from airflow_provider_clarity.snapshots import index as shared_index
from airflow_provider_clarity.snapshots.index import SharedSnapshot, SnapshotIndex, index_key
from airflow_provider_clarity.testing.emulator import ClarityEmulator
from tests.conftest import S3_BUCKET
from tests.operators.fixtures import PROJECT, make_context


@pytest.fixture
def index_store(monkeypatch: pytest.MonkeyPatch) -> MemoryLedgerStore:
    """Every index the operator builds shares one in-memory document (no Airflow DB)."""
    store = MemoryLedgerStore()
    monkeypatch.setattr(shared_index, "VariableLedgerStore", lambda key, **_: store)
    return store


def export(task_id: str, destination: Path | None = None, **kwargs: Any) -> ClarityExportOperator:
    kwargs.setdefault("dimensions", ["Device"])
    target = None if destination is None else str(destination)
    return ClarityExportOperator(task_id=task_id, destination=target, **kwargs)


def test_same_request_within_the_age_reuses_the_first_answer(
    conn: str, index_store: MemoryLedgerStore, clarity_emulator: ClarityEmulator, tmp_path: Path
) -> None:
    first = export("a", tmp_path / "a" / "device.parquet").execute(make_context())
    second = export("b", tmp_path / "b" / "device.parquet").execute(make_context())

    assert clarity_emulator.calls(PROJECT) == 1
    assert first["reused_from"] is None
    assert second["reused_from"] == first["raw_path"]
    # The window columns read exported_at: the reused table says when Clarity answered.
    assert second["exported_at"] == first["exported_at"]
    assert second["rows"] == first["rows"]
    copy = json.loads((tmp_path / "b" / "device.raw.json").read_text())
    assert (
        copy["exported_at"]
        == json.loads((tmp_path / "a" / "device.raw.json").read_text())["exported_at"]
    )
    [entry] = index_store.data["snapshots"]  # type: ignore[index]
    assert entry["location"] == first["raw_path"] and entry["worker"] == socket.gethostname()


def test_other_requests_an_old_answer_zero_age_and_force_refresh_call(
    conn: str, index_store: MemoryLedgerStore, clarity_emulator: ClarityEmulator, tmp_path: Path
) -> None:
    export("a", tmp_path / "a.parquet").execute(make_context())
    export("os", tmp_path / "os.parquet", dimensions=["OS"]).execute(make_context())
    export("two_days", tmp_path / "d2.parquet", num_of_days=2).execute(make_context())
    assert clarity_emulator.calls(PROJECT) == 3

    never = export("never", tmp_path / "never.parquet", max_snapshot_age=0)
    assert never.execute(make_context())["reused_from"] is None
    forced = export("forced", tmp_path / "forced.parquet", force_refresh=True)
    assert forced.execute(make_context())["reused_from"] is None
    assert clarity_emulator.calls(PROJECT) == 5

    # Age the newest Device entries past one second: a task allowing one second calls.
    document = index_store.data
    assert document is not None
    for entry in document["snapshots"]:
        entry["exported_at"] = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    index_store.data = document
    short = export("short", tmp_path / "short.parquet", max_snapshot_age=timedelta(seconds=1))
    assert short.execute(make_context())["reused_from"] is None
    assert clarity_emulator.calls(PROJECT) == 6


def test_task_state_store_answers_are_not_shared_and_it_says_so(
    conn: str,
    index_store: MemoryLedgerStore,
    clarity_emulator: ClarityEmulator,
    task_log: Any,
    tmp_path: Path,
) -> None:
    export("xcom_1").execute(make_context())
    export("xcom_2").execute(make_context())

    assert clarity_emulator.calls(PROJECT) == 2
    assert "which only this task instance can read" in task_log()
    assert index_store.data is None
    # The other way round works: an XCom-mode task reuses a shared file and keeps a copy.
    export("file", tmp_path / "device.parquet").execute(make_context())
    context = make_context()
    rows = export("xcom_3").execute(context)
    assert clarity_emulator.calls(PROJECT) == 3
    assert rows and context["task_state_store"].get("clarity_raw_snapshot")["status"] == 200


def test_answers_without_data_are_not_shared(
    conn: str, index_store: MemoryLedgerStore, clarity_emulator: ClarityEmulator, tmp_path: Path
) -> None:
    # Clarity's no-dimension answer to a breakdown request: kept, but no use to anyone else.
    clarity_emulator.inject_fault("ignore_dimensions")
    with pytest.raises(ClarityDimensionFallbackError):
        export("a", tmp_path / "a.parquet").execute(make_context())
    clarity_emulator.inject_fault("server_error", 3)
    with pytest.raises(ClarityError):
        export("b", tmp_path / "b.parquet", hook_params={"retry_backoff": 0}).execute(
            make_context()
        )
    assert index_store.data is None
    assert clarity_emulator.calls(PROJECT) == 4


def test_a_file_on_another_workers_disk_is_not_reused_and_the_log_says_why(
    conn: str,
    index_store: MemoryLedgerStore,
    clarity_emulator: ClarityEmulator,
    task_log: Any,
    tmp_path: Path,
) -> None:
    first = export("a", tmp_path / "a.parquet").execute(make_context())
    document = index_store.data
    assert document is not None
    document["snapshots"][0]["worker"] = "worker-7"
    index_store.data = document
    (tmp_path / "a.raw.json").unlink()  # what another host's local disk looks like from here

    second = export("b", tmp_path / "b.parquet").execute(make_context())

    assert second["reused_from"] is None and first["reused_from"] is None
    assert clarity_emulator.calls(PROJECT) == 2
    log = task_log()
    assert "local disk of worker 'worker-7'" in log and "object storage" in log


def test_object_storage_answers_are_reused_from_any_worker(
    conn: str,
    index_store: MemoryLedgerStore,
    clarity_emulator: ClarityEmulator,
    s3: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = f"s3://aws_default@{S3_BUCKET}/raw/"
    first = export("a", raw_location=raw).execute(make_context())
    monkeypatch.setattr(socket, "gethostname", lambda: "worker-2")  # another worker

    second = export(
        "b",
        dimensions=["Device"],
        destination=f"s3://aws_default@{S3_BUCKET}/b.csv",
        output_format="csv",
    ).execute(make_context())

    assert isinstance(first, list) and first  # XCom mode: rows, with the raw kept on S3
    [entry] = index_store.data["snapshots"]  # type: ignore[index]
    assert entry["location"].startswith(raw) and entry["worker"] != "worker-2"
    assert second["reused_from"] == entry["location"]
    assert clarity_emulator.calls(PROJECT) == 1
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=S3_BUCKET)["Contents"])
    assert {"b.csv", "b.raw.json"} <= set(keys)


def test_index_prunes_and_replaces_entries(tmp_path: Path) -> None:
    store = MemoryLedgerStore()
    index = SnapshotIndex("p/1", store=store)
    now = datetime.now(UTC)

    def entry(location: str, age: timedelta) -> SharedSnapshot:
        return SharedSnapshot({"numOfDays": "1"}, now - age, location, "h", "w", "c")

    index.register(entry("file:///old.json", timedelta(hours=49)), now=now - timedelta(hours=1))
    index.register(entry("file:///a.json", timedelta(minutes=30)), now=now)
    index.register(entry("file:///a.json", timedelta(minutes=1)), now=now)
    index.register(entry("file:///b.json", timedelta(minutes=2)), now=now)

    assert [e.location for e in index.entries()] == ["file:///a.json", "file:///b.json"]
    found = index.find({"numOfDays": "1"}, "h", max_age=timedelta(seconds=90), now=now)
    assert [e.location for e in found] == ["file:///a.json"]
    assert index.find({"numOfDays": "2"}, "h", max_age=timedelta(hours=1), now=now) == []
    assert index.find({"numOfDays": "1"}, "other", max_age=timedelta(hours=1), now=now) == []
    assert index.key == index_key("p/1") and index.key.startswith("clarity_snapshots__p_1_")
    assert index.key.removeprefix("clarity_snapshots__") == ledger_key("p/1").removeprefix(
        "clarity_quota__"
    )


def test_max_snapshot_age_argument_and_extra_are_checked() -> None:
    with pytest.raises(ClarityRequestError, match="max_snapshot_age"):
        ClarityExportOperator(task_id="t", max_snapshot_age=-1)
    with pytest.raises(ClarityRequestError, match="max_snapshot_age"):
        ClarityExportOperator(task_id="t", max_snapshot_age=1.5)
    assert ClarityExportOperator(task_id="t", max_snapshot_age="60").max_snapshot_age == (
        timedelta(seconds=60)
    )
    settings = QuotaSettings.from_extras({"max_snapshot_age_seconds": "0"}, conn_id="c")
    assert settings.max_snapshot_age_seconds == 0
    assert QuotaSettings("p").max_snapshot_age_seconds == 3600
    with pytest.raises(ClarityRequestError, match="max_snapshot_age_seconds"):
        QuotaSettings.from_extras({"max_snapshot_age_seconds": "-5"}, conn_id="c")


# ------------------------------------------------------------------ three DAGs, dag.test()

THREE_DAGS = ("shared_team_1", "shared_team_2", "shared_team_3")


@pytest.fixture
def variable_index(airflow_db: Path) -> Iterator[SnapshotIndex]:
    """The real Variable-backed index and ledger of the emulator project, empty around a test."""
    from airflow.models.variable import Variable

    for key in (index_key(PROJECT), ledger_key(PROJECT)):
        Variable.delete(key)
    yield SnapshotIndex(PROJECT)
    for key in (index_key(PROJECT), ledger_key(PROJECT)):
        Variable.delete(key)


def test_three_dags_asking_the_same_breakdown_spend_one_call(
    clarity_connection: str,
    clarity_emulator: ClarityEmulator,
    variable_index: SnapshotIndex,
    run_dag: Any,
    tmp_path: Path,
) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    summaries: dict[str, Any] = {}
    for dag_id in THREE_DAGS:
        dag_file = tmp_path / f"{dag_id}.py"
        dag_file.write_text(
            textwrap.dedent(
                f"""
                from airflow.sdk import DAG
                from airflow_provider_clarity.operators.export import ClarityExportOperator

                with DAG("{dag_id}", schedule="@daily", catchup=False):
                    ClarityExportOperator(
                        task_id="device",
                        dimensions=["Device"],
                        destination="file://{tmp_path}/{dag_id}/{{{{ ds }}}}/device.parquet",
                    )
                """
            )
        )
        run = run_dag(dag_file, dag_id, logical_date=datetime.now(UTC))
        assert run.state == "success"
        with create_session() as session:
            row = session.query(XComModel).filter_by(dag_id=dag_id, run_id=run.run_id).one()
            summaries[dag_id] = row.value if isinstance(row.value, dict) else json.loads(row.value)

    assert clarity_emulator.calls(PROJECT) == 1
    first, *others = (summaries[d] for d in THREE_DAGS)
    assert first["reused_from"] is None
    assert [s["reused_from"] for s in others] == [first["raw_path"]] * 2
    assert {s["exported_at"] for s in summaries.values()} == {first["exported_at"]}
    assert [e.location for e in variable_index.entries()] == [first["raw_path"]]
    assert QuotaLedger(PROJECT).remaining() == 9
