"""ClarityExportOperator against the Clarity emulator (a real HTTP server on 127.0.0.1).

Most tests call ``execute`` directly with a small context (a dict holding what the
operator reads) and an in-memory quota ledger; two run whole DAGs with ``dag.test()``.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
import requests
from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import Asset, AssetAlias
from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_provider_clarity import _storage, normalize
from airflow_provider_clarity._snapshot import raw_variable_key
from airflow_provider_clarity.exceptions import (
    ClarityDimensionFallbackError,
    ClarityQuotaExceededError,
    ClarityRequestError,
)
from airflow_provider_clarity.operators.export import ClarityExportOperator
from airflow_provider_clarity.quota import MemoryLedgerStore, QuotaLedger, ledger_key
from airflow_provider_clarity.testing.emulator import ClarityEmulator
from airflow_provider_clarity.version_compat import (
    HAS_TASK_STATE_STORE,
    AirflowRescheduleException,
    AirflowSkipException,
    TaskDeferred,
)

PROJECT = "demo-project"


# ------------------------------------------------------------------ helpers (test_export_s3 too)


class FakeTaskStateStore:
    """Stands in for ``context["task_state_store"]``; values go through JSON like the real one."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, *, retention: timedelta | None = None) -> None:
        self.values[key] = json.loads(json.dumps(value))

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def make_context(
    *,
    interval_end: datetime | None = None,
    state_store: FakeTaskStateStore | None = None,
    with_state_store: bool = True,
) -> Any:
    """The parts of an Airflow task context the operator reads (a dict, typed loosely)."""
    end = datetime.now(UTC) if interval_end is None else interval_end
    ti = SimpleNamespace(
        dag_id="clarity_test", task_id="export", run_id="scheduled__test", map_index=-1
    )
    context: dict[str, Any] = {
        "ti": ti,
        "outlet_events": OutletEventAccessors(),
        "data_interval_end": end,
        "logical_date": end,
    }
    if with_state_store:
        context["task_state_store"] = (
            state_store if state_store is not None else FakeTaskStateStore()
        )
    return context


@pytest.fixture
def ledger_store(monkeypatch: pytest.MonkeyPatch) -> MemoryLedgerStore:
    """Make every ledger the operator builds share one in-memory store (no Airflow DB)."""
    store = MemoryLedgerStore()
    for_hook = QuotaLedger.for_hook.__func__  # type: ignore[attr-defined]

    def with_memory_store(cls: type[QuotaLedger], hook: Any, **kwargs: Any) -> QuotaLedger:
        kwargs.setdefault("store", store)
        return for_hook(cls, hook, **kwargs)

    monkeypatch.setattr(QuotaLedger, "for_hook", classmethod(with_memory_store))
    return store


@pytest.fixture
def conn(clarity_connection: str, ledger_store: MemoryLedgerStore) -> str:
    """The emulator connection, with the in-memory ledger in place."""
    return clarity_connection


def spend_ledger(store: MemoryLedgerStore, calls: int = 10) -> QuotaLedger:
    """Record ``calls`` successful calls by another DAG in the ledger."""
    ledger = QuotaLedger(PROJECT, store=store, caller="other_dag/other_task/run/-1")
    for _ in range(calls):
        ledger.before_call(None)
        ledger.after_call(None, "200")
    return ledger


def _values(series: pd.Series) -> list[Any]:
    return [None if pd.isna(value) else value for value in series]


def assert_no_token(token: str, *texts: str) -> None:
    """Neither the token nor any 24-character piece of it appears in ``texts``."""
    pieces = {token[i : i + 24] for i in range(max(1, len(token) - 23))}
    for text in texts:
        assert not any(piece in text for piece in pieces)


# ------------------------------------------------------------------ construction


def test_construction_defaults_and_validation() -> None:
    op = ClarityExportOperator(task_id="t")
    assert op.pool == "clarity_api"
    assert op.outlets == []
    assert {"num_of_days", "dimensions", "destination", "raw_location", "clarity_conn_id"} <= set(
        op.template_fields
    )
    assert ClarityExportOperator(task_id="t", pool="mine").pool == "mine"

    with pytest.raises(ValueError, match="output_format must be one of parquet, csv, jsonl, json"):
        ClarityExportOperator(task_id="t", output_format="xlsx")
    with pytest.raises(ValueError, match="on_quota_exhausted"):
        ClarityExportOperator(task_id="t", on_quota_exhausted="retry")
    with pytest.raises(ValueError, match="relative path"):
        ClarityExportOperator(task_id="t", destination="data/os.parquet")
    with pytest.raises(TypeError):
        ClarityExportOperator("t")  # type: ignore[call-arg]


def test_outlets_asset_for_fixed_destination_alias_for_templated() -> None:
    fixed = ClarityExportOperator(task_id="t", destination="s3://aws_default@bucket/c/os.parquet")
    assert fixed.outlets == [Asset(uri="s3://bucket/c/os.parquet")]

    local = ClarityExportOperator(task_id="t", destination="/data/clarity/os.parquet")
    assert local.outlets == [Asset(uri="file:///data/clarity/os.parquet")]

    templated = ClarityExportOperator(task_id="t", destination="file:///d/{{ ds }}/os.parquet")
    assert templated.outlets == [AssetAlias(name="clarity/t")]


# ------------------------------------------------------------------ XCom mode and formats


def test_xcom_mode_returns_typed_records_and_keeps_raw_in_task_state_store(
    conn: str,
    clarity_emulator: ClarityEmulator,
    clarity_token: str,
    task_log: Any,
) -> None:
    state = FakeTaskStateStore()
    op = ClarityExportOperator(task_id="export", dimensions=["OS", "Device"])

    records = op.execute(make_context(state_store=state))

    assert clarity_emulator.total_requests() == 1
    assert records and {r["metric"] for r in records} >= {"Traffic", "ScrollDepth"}
    traffic = [r for r in records if r["metric"] == "Traffic"]
    assert all(isinstance(r["total_session_count"], int) for r in traffic)
    assert {r["device"] for r in traffic} - {None} <= {"PC", "Mobile", "Tablet", "Other"}
    assert all(r["num_of_days"] == 1 for r in records)
    envelope = state.values["clarity_raw_snapshot"]
    assert envelope["format"] == "clarity-raw/1"
    assert envelope["request"] == {"numOfDays": "1", "dimension1": "OS", "dimension2": "Device"}
    assert envelope["project_id"] == PROJECT
    assert (
        normalize.to_records(
            envelope["response"],
            exported_at=envelope["exported_at"],
            num_of_days=1,
            project_id=PROJECT,
            dimensions=["OS", "Device"],
        )
        == records
    )
    assert "Calls left in this window: 9" in task_log()
    assert_no_token(clarity_token, task_log(), json.dumps(records), json.dumps(envelope))


def test_xcom_mode_warns_above_xcom_warn_rows(
    conn: str, clarity_emulator: ClarityEmulator, task_log: Any
) -> None:
    op = ClarityExportOperator(task_id="export", dimensions="OS", xcom_warn_rows=3)
    records = op.execute(make_context())
    assert len(records) > 3
    assert "set destination= to write them to a file instead" in task_log()


@pytest.mark.parametrize("output_format", ["parquet", "csv", "jsonl", "json"])
def test_each_output_format_is_written_and_reads_back(
    conn: str,
    clarity_emulator: ClarityEmulator,
    clarity_token: str,
    tmp_path: Path,
    output_format: str,
) -> None:
    target = tmp_path / "clarity" / f"os.{output_format}"
    op = ClarityExportOperator(
        task_id="export",
        dimensions=["OS"],
        destination=f"file://{target}",
        output_format=output_format,
    )
    context = make_context()

    result = op.execute(context)

    raw = json.loads((tmp_path / "clarity" / "os.raw.json").read_text())
    assert raw["format"] == "clarity-raw/1"
    expected = normalize.to_dataframe(
        raw["response"],
        exported_at=raw["exported_at"],
        num_of_days=1,
        project_id=raw["project_id"],
        dimensions="OS",
    )
    if output_format == "parquet":
        written = pd.read_parquet(target)
        pd.testing.assert_frame_equal(written, expected)
        assert str(written["sessions_count"].dtype) == "Int64"
        assert written["average_scroll_depth"].dtype == "float64"
    else:
        if output_format == "csv":
            written = pd.read_csv(target)
        else:
            written = pd.read_json(target, lines=output_format == "jsonl", dtype=False)
        assert list(written.columns) == list(expected.columns)
        assert _values(written["metric"]) == _values(expected["metric"])
        assert _values(written["os"]) == _values(expected["os"])
        counts = written["sessions_count"].astype("Int64")
        pd.testing.assert_series_equal(counts, expected["sessions_count"], check_dtype=False)
        assert pd.to_datetime(written["exported_at"]).iloc[0] == expected["exported_at"].iloc[0]

    assert result["path"] == f"file://{target}"
    assert result["raw_path"] == f"file://{tmp_path / 'clarity' / 'os.raw.json'}"
    assert result["rows"] == len(expected)
    assert sum(result["rows_per_metric"].values()) == len(expected)
    assert result["dimensions"] == ["OS"]
    assert result["num_of_days"] == 1
    assert result["possibly_truncated"] == []
    assert result["calls_remaining"] == 9
    # the asset event for the written file carries the extras
    extra = context["outlet_events"][Asset(uri=f"file://{target}")].extra
    exported_at = datetime.fromisoformat(raw["exported_at"])
    assert extra == {
        "rows": len(expected),
        "exported_at": raw["exported_at"],
        "calls_remaining": 9,
        # The first snapshot of this request: nothing earlier to meet, so no minutes.
        "window_start": (exported_at - timedelta(days=1)).isoformat(),
        "window_end": raw["exported_at"],
        "previous_window_end": None,
        "overlap_minutes": None,
        "gap_minutes": None,
    }
    assert {key: result[key] for key in extra} == extra  # type: ignore[literal-required]
    assert sorted(p.name for p in target.parent.iterdir()) == sorted(
        [target.name, "os.raw.json"]
    )  # no temporary files left behind
    assert_no_token(clarity_token, target.read_bytes().decode("latin-1"), json.dumps(raw))


def test_possibly_truncated_names_blocks_at_the_1000_row_cap(
    conn: str, clarity_emulator: ClarityEmulator, tmp_path: Path, task_log: Any
) -> None:
    clarity_emulator.configure_project(PROJECT, url_count=1200)
    op = ClarityExportOperator(
        task_id="export", dimensions=["URL"], destination=str(tmp_path / "url.parquet")
    )
    result = op.execute(make_context())
    assert "Traffic" in result["possibly_truncated"]
    assert all(result["rows_per_metric"][m] == 1000 for m in result["possibly_truncated"])
    assert "Possibly truncated at Clarity's 1000-row cap" in task_log()


# ------------------------------------------------------------------ raw snapshot reuse


def test_normalisation_failure_keeps_raw_and_retry_reuses_it(
    conn: str,
    clarity_emulator: ClarityEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    task_log: Any,
) -> None:
    target = tmp_path / "os.parquet"
    real = normalize.to_dataframe

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("normaliser bug")

    monkeypatch.setattr(normalize, "to_dataframe", broken)
    op = ClarityExportOperator(task_id="export", dimensions="OS", destination=f"file://{target}")
    with pytest.raises(ValueError, match="normaliser bug"):
        op.execute(make_context())
    assert (tmp_path / "os.raw.json").exists()
    assert not target.exists()

    monkeypatch.setattr(normalize, "to_dataframe", real)
    retry = ClarityExportOperator(task_id="export", dimensions="OS", destination=f"file://{target}")
    result = retry.execute(make_context())

    assert clarity_emulator.total_requests() == 1
    assert result["rows"] == len(pd.read_parquet(target))
    assert "Reusing the raw snapshot kept at file://" in task_log()
    assert "no Clarity call spent. Set force_refresh=True to fetch again." in task_log()


def test_force_refresh_spends_another_call(conn: str, clarity_emulator: ClarityEmulator) -> None:
    state = FakeTaskStateStore()
    ClarityExportOperator(task_id="export").execute(make_context(state_store=state))
    first = state.values["clarity_raw_snapshot"]["exported_at"]
    ClarityExportOperator(task_id="export").execute(make_context(state_store=state))
    assert clarity_emulator.total_requests() == 1

    ClarityExportOperator(task_id="export", force_refresh=True).execute(
        make_context(state_store=state)
    )
    assert clarity_emulator.total_requests() == 2
    assert state.values["clarity_raw_snapshot"]["exported_at"] != first


def test_snapshot_for_another_request_is_not_reused(
    conn: str, clarity_emulator: ClarityEmulator, task_log: Any
) -> None:
    state = FakeTaskStateStore()
    ClarityExportOperator(task_id="export", dimensions="OS").execute(
        make_context(state_store=state)
    )
    records = ClarityExportOperator(task_id="export", dimensions="Device").execute(
        make_context(state_store=state)
    )
    assert clarity_emulator.total_requests() == 2
    assert "fetching again" in task_log()
    assert any(r["device"] for r in records)
    assert state.values["clarity_raw_snapshot"]["request"]["dimension1"] == "Device"


def test_raw_location_folder_names_the_file_after_the_task_instance(
    conn: str, clarity_emulator: ClarityEmulator, tmp_path: Path
) -> None:
    op = ClarityExportOperator(task_id="export", raw_location=f"file://{tmp_path}/raw")
    op.execute(make_context(with_state_store=False))
    kept = tmp_path / "raw" / "clarity_test" / "scheduled__test" / "export.raw.json"
    assert json.loads(kept.read_text())["request"] == {"numOfDays": "1"}

    ClarityExportOperator(task_id="export", raw_location=f"file://{tmp_path}/raw").execute(
        make_context(with_state_store=False)
    )
    assert clarity_emulator.total_requests() == 1


def test_without_any_place_to_keep_raw_it_warns_and_still_exports(
    conn: str, clarity_emulator: ClarityEmulator, task_log: Any, airflow_db: Path
) -> None:
    from airflow.models.variable import Variable

    context = make_context(with_state_store=False)
    records = ClarityExportOperator(task_id="export").execute(context)
    assert records
    if HAS_TASK_STATE_STORE:
        assert "Set raw_location (or destination) to keep it" in task_log()
        return
    # Airflow 3.1 and 3.2 have no task state store: a Variable of the task instance keeps it.
    key = raw_variable_key(context["ti"])
    try:
        again = ClarityExportOperator(task_id="export").execute(
            make_context(with_state_store=False)
        )
        assert len(again) == len(records)
        assert clarity_emulator.total_requests() == 1
        assert "cannot be kept for retries" not in task_log()
    finally:
        Variable.delete(key)


def test_dimension_fallback_is_kept_and_not_called_again(
    conn: str, clarity_emulator: ClarityEmulator
) -> None:
    # The live API answers a breakdown it ignores with the no-dimension snapshot (a 200).
    clarity_emulator.inject_fault("ignore_dimensions")
    state = FakeTaskStateStore()
    with pytest.raises(ClarityDimensionFallbackError):
        ClarityExportOperator(task_id="export", dimensions="OS").execute(
            make_context(state_store=state)
        )
    kept = state.values["clarity_raw_snapshot"]
    assert kept["fallback"] is True
    assert kept["response"] == clarity_emulator.payload(PROJECT)

    with pytest.raises(ClarityDimensionFallbackError, match="force_refresh=True"):
        ClarityExportOperator(task_id="export", dimensions="OS").execute(
            make_context(state_store=state)
        )
    assert clarity_emulator.total_requests() == 1


# ------------------------------------------------------------------ atomic writes


def test_failed_write_leaves_no_file_under_the_final_name(
    conn: str, clarity_emulator: ClarityEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "os.parquet"
    real_fdopen = os.fdopen

    class DiskFullHalfway:
        def __init__(self, handle: Any) -> None:
            self.handle = handle

        def __enter__(self) -> DiskFullHalfway:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def write(self, data: bytes) -> int:
            if data.startswith(b"PAR1"):  # the Parquet file, not the raw snapshot
                self.handle.write(data[: len(data) // 2])
                self.handle.flush()
                raise OSError(28, "No space left on device")
            return int(self.handle.write(data))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.handle, name)

    monkeypatch.setattr(
        _storage.os, "fdopen", lambda fd, mode: DiskFullHalfway(real_fdopen(fd, mode))
    )
    op = ClarityExportOperator(task_id="export", dimensions="OS", destination=str(target))
    with pytest.raises(OSError, match="No space left"):
        op.execute(make_context())

    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["os.raw.json"]


# ------------------------------------------------------------------ stale windows


@pytest.mark.parametrize("mode", ["skip", "fail"])
def test_stale_window_spends_no_call(
    conn: str, clarity_emulator: ClarityEmulator, tmp_path: Path, mode: str
) -> None:
    op = ClarityExportOperator(
        task_id="export",
        num_of_days=2,
        destination=str(tmp_path / "os.parquet"),
        on_stale_window=mode,
    )
    context = make_context(interval_end=datetime.now(UTC) - timedelta(hours=49))
    expected = AirflowSkipException if mode == "skip" else ClarityRequestError
    with pytest.raises(expected, match="keeps no history") as info:
        op.execute(context)
    assert "catch-up, backfill or a late retry" in str(info.value)
    assert clarity_emulator.total_requests() == 0
    assert list(tmp_path.iterdir()) == []


def test_recent_enough_window_and_manual_runs_are_served(
    conn: str, clarity_emulator: ClarityEmulator
) -> None:
    ClarityExportOperator(task_id="export", num_of_days=2).execute(
        make_context(interval_end=datetime.now(UTC) - timedelta(hours=47))
    )
    context = make_context()
    context["data_interval_end"] = context["logical_date"] = None
    ClarityExportOperator(task_id="export").execute(context)
    assert clarity_emulator.total_requests() == 2


# ------------------------------------------------------------------ quota


def test_quota_exhausted_wait_deferrable_defers_until_the_reset(
    conn: str, clarity_emulator: ClarityEmulator, ledger_store: MemoryLedgerStore
) -> None:
    ledger = spend_ledger(ledger_store)
    op = ClarityExportOperator(task_id="export", deferrable=True)
    with pytest.raises(TaskDeferred) as info:
        op.execute(make_context())
    trigger = info.value.trigger
    assert isinstance(trigger, DateTimeTrigger)
    assert trigger.moment == ledger.next_reset()
    assert info.value.method_name == "execute_complete"
    assert clarity_emulator.total_requests() == 0


def test_quota_exhausted_wait_reschedules_until_the_reset(
    conn: str, clarity_emulator: ClarityEmulator, ledger_store: MemoryLedgerStore
) -> None:
    ledger = spend_ledger(ledger_store)
    op = ClarityExportOperator(task_id="export", deferrable=False)
    with pytest.raises(AirflowRescheduleException) as info:
        op.execute(make_context())
    assert info.value.reschedule_date == ledger.next_reset()
    assert clarity_emulator.total_requests() == 0


def test_quota_exhausted_skip_says_when_and_who(
    conn: str, clarity_emulator: ClarityEmulator, ledger_store: MemoryLedgerStore
) -> None:
    ledger = spend_ledger(ledger_store)
    op = ClarityExportOperator(task_id="export", on_quota_exhausted="skip")
    with pytest.raises(AirflowSkipException) as info:
        op.execute(make_context())
    message = str(info.value)
    assert ledger.next_reset().isoformat() in message
    assert "other_dag/other_task/run/-1" in message
    assert clarity_emulator.total_requests() == 0


def test_quota_exhausted_fail_raises_the_quota_error(
    conn: str, clarity_emulator: ClarityEmulator, ledger_store: MemoryLedgerStore
) -> None:
    spend_ledger(ledger_store)
    op = ClarityExportOperator(task_id="export", on_quota_exhausted="fail")
    with pytest.raises(ClarityQuotaExceededError) as info:
        op.execute(make_context())
    assert info.value.source == "ledger"
    assert clarity_emulator.total_requests() == 0


def test_reserve_is_respected(
    conn: str, clarity_emulator: ClarityEmulator, ledger_store: MemoryLedgerStore
) -> None:
    spend_ledger(ledger_store, calls=7)
    op = ClarityExportOperator(task_id="export", reserve=3, on_quota_exhausted="fail")
    with pytest.raises(ClarityQuotaExceededError):
        op.execute(make_context())
    assert clarity_emulator.total_requests() == 0


def test_429_from_calls_outside_airflow_gets_the_same_decision(
    conn: str,
    clarity_emulator: ClarityEmulator,
    clarity_token: str,
    ledger_store: MemoryLedgerStore,
) -> None:
    # Someone spends the day's calls with a script, outside Airflow and its ledger.
    for _ in range(10):
        response = requests.get(
            clarity_emulator.endpoint_url,
            params={"numOfDays": "1"},
            headers={"Authorization": f"Bearer {clarity_token}"},
            timeout=10,
        )
        assert response.status_code == 200
    ledger = QuotaLedger(PROJECT, store=ledger_store)
    assert ledger.remaining() == 10

    with pytest.raises(AirflowSkipException, match="Clarity answered 429"):
        ClarityExportOperator(task_id="export", on_quota_exhausted="skip").execute(make_context())
    assert clarity_emulator.total_requests() == 11
    assert ledger.remaining() == 0  # the 429 marked the project spent

    with pytest.raises(AirflowRescheduleException) as info:
        ClarityExportOperator(task_id="export", deferrable=False).execute(make_context())
    assert info.value.reschedule_date == ledger.next_reset()
    assert clarity_emulator.total_requests() == 11


def test_execute_complete_checks_again_after_the_wait(
    conn: str, clarity_emulator: ClarityEmulator
) -> None:
    op = ClarityExportOperator(task_id="export", deferrable=True)
    records = op.execute_complete(make_context(), event=datetime.now(UTC))
    assert records
    assert clarity_emulator.total_requests() == 1


# ------------------------------------------------------------------ lineage


def test_openlineage_facets_name_clarity_and_the_written_file(
    conn: str, clarity_emulator: ClarityEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "os.csv"
    op = ClarityExportOperator(
        task_id="export", destination=f"file://{target}", output_format="csv"
    )
    op.execute(make_context())
    lineage = op.get_openlineage_facets_on_complete(None)
    assert lineage is not None
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        (clarity_emulator.base_url, f"project/{PROJECT}/live-insights")
    ]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [("file", str(target))]

    monkeypatch.setitem(__import__("sys").modules, "airflow.providers.openlineage.extractors", None)
    assert op.get_openlineage_facets_on_complete(None) is None


# ------------------------------------------------------------------ whole DAGs with dag.test()


@pytest.fixture
def variable_ledger(airflow_db: Path) -> Iterator[QuotaLedger]:
    """The real Variable-backed ledger for the emulator project, empty before and after."""
    from airflow.models.variable import Variable

    key = ledger_key(PROJECT)
    Variable.delete(key)
    yield QuotaLedger(PROJECT)
    Variable.delete(key)


def _write_dag(folder: Path, dag_id: str, body: str) -> Path:
    path = folder / f"{dag_id}.py"
    path.write_text(
        textwrap.dedent(
            f"""
            from datetime import datetime, timedelta

            from airflow.sdk import DAG

            from airflow_provider_clarity.operators.export import ClarityExportOperator

            with DAG("{dag_id}", schedule=None, start_date=datetime(2025, 1, 1), catchup=False):
            """
        )
        + textwrap.indent(textwrap.dedent(body), "    ")
    )
    return path


def test_dag_retry_after_normalisation_failure_reuses_the_kept_answer(
    clarity_connection: str,
    clarity_emulator: ClarityEmulator,
    variable_ledger: QuotaLedger,
    run_dag: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    task_log: Any,
) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    real = normalize.to_records
    failures: list[int] = []

    def fails_once(*args: Any, **kwargs: Any) -> Any:
        if not failures:
            failures.append(1)
            raise ValueError("normaliser bug")
        return real(*args, **kwargs)

    monkeypatch.setattr(normalize, "to_records", fails_once)
    dag_file = _write_dag(
        tmp_path,
        "clarity_retry_test",
        """
        ClarityExportOperator(
            task_id="export", dimensions=["OS"], retries=1, retry_delay=timedelta(0)
        )
        """,
    )

    run = run_dag(dag_file, "clarity_retry_test", logical_date=datetime.now(UTC))

    assert run.state == "success"
    assert failures == [1]
    assert clarity_emulator.total_requests() == 1
    assert variable_ledger.remaining() == 9
    # Airflow 3.3 keeps it in the task state store; 3.1 and 3.2 in a Variable of its own.
    kept_at = (
        "the task state store" if HAS_TASK_STATE_STORE else "the Airflow Variable 'clarity_raw__"
    )
    assert f"Reusing the raw snapshot kept at {kept_at}" in task_log()
    with create_session() as session:
        rows = session.query(XComModel).filter_by(dag_id="clarity_retry_test", run_id=run.run_id)
        values = [row.value for row in rows]
    assert values and "Traffic" in json.dumps(values)


def test_dag_templated_destination_emits_asset_event_through_alias(
    clarity_connection: str,
    clarity_emulator: ClarityEmulator,
    clarity_token: str,
    variable_ledger: QuotaLedger,
    run_dag: Any,
    tmp_path: Path,
    task_log: Any,
) -> None:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    out = tmp_path / "out"
    dag_file = _write_dag(
        tmp_path,
        "clarity_asset_test",
        f"""
        ClarityExportOperator(
            task_id="export",
            dimensions="{{{{ params.dims }}}}",
            destination="file://{out}/dt={{{{ ds }}}}/os.parquet",
            params={{"dims": "OS,Device"}},
        )
        """,
    )
    now = datetime.now(UTC)

    run = run_dag(dag_file, "clarity_asset_test", logical_date=now)

    assert run.state == "success"
    written = out / f"dt={now:%Y-%m-%d}" / "os.parquet"
    frame = pd.read_parquet(written)
    assert {"os", "device"} <= set(frame.columns) and frame["device"].notna().any()
    assert (written.parent / "os.raw.json").exists()
    assert clarity_emulator.total_requests() == 1
    with create_session() as session:
        events = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.uri == f"file://{written}")
            .all()
        )
        assert len(events) == 1
        assert events[0].extra["rows"] == len(frame)
        assert events[0].extra["calls_remaining"] == 9
        xcoms = [
            row.value
            for row in session.query(XComModel).filter_by(
                dag_id="clarity_asset_test", run_id=run.run_id
            )
        ]
    files = [p.read_bytes().decode("latin-1") for p in written.parent.iterdir()]
    log = task_log()
    assert "Clarity export numOfDays=1 dimensions=OS,Device" in log  # the task log was captured
    assert_no_token(clarity_token, log, json.dumps(xcoms, default=str), *files)


# ------------------------------------------------------------------ many projects, many workers


def test_mapped_exports_declare_their_alias_when_the_dag_is_parsed() -> None:
    from airflow.sdk import DAG

    with DAG("agency", schedule=None) as dag:
        ClarityExportOperator.partial(
            task_id="export",
            destination="file:///data/{{ task.clarity_conn_id }}/{{ clarity_day }}/os.parquet",
        ).expand(clarity_conn_id=["clarity_a", "clarity_b"])
    assert dag.get_task("export").outlets == [AssetAlias(name="clarity/agency/export")]
    # Unmapped at run time, the task keeps the one alias (and emits through it).
    op = ClarityExportOperator(
        task_id="export",
        destination="file:///data/{{ ds }}/os.parquet",
        outlets=[AssetAlias(name="clarity/export")],
    )
    assert op.outlets == [AssetAlias(name="clarity/export")]


def test_a_raw_snapshot_on_worker_disk_is_flagged_when_retries_can_move(
    conn: str,
    clarity_emulator: ClarityEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    task_log: Any,
) -> None:
    destination = f"file://{tmp_path}/os.parquet"
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    ClarityExportOperator(task_id="export", destination=destination).execute(make_context())
    assert "on this worker's own disk" not in task_log()  # LocalExecutor: one host
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    ClarityExportOperator(task_id="export", destination=destination).execute(make_context())
    assert "on this worker's own disk, but the executor (CeleryExecutor)" in task_log()
    assert clarity_emulator.total_requests() == 1, "the second run reused the kept answer"
