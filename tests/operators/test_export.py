"""ClarityExportOperator against the Clarity emulator (a real HTTP server on 127.0.0.1).

Most tests call ``execute`` directly with a small context (a dict holding what the
operator reads) and an in-memory quota ledger; two run whole DAGs with ``dag.test()``.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from airflow.sdk import Asset, AssetAlias

from airflow_provider_clarity import normalize
from airflow_provider_clarity.operators.export import ClarityExportOperator
from airflow_provider_clarity.testing.emulator import ClarityEmulator
from airflow_provider_clarity.utils import storage
from tests.operators.fixtures import (
    PROJECT,
    FakeTaskStateStore,
    _values,
    assert_no_token,
    make_context,
)

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
        storage.os, "fdopen", lambda fd, mode: DiskFullHalfway(real_fdopen(fd, mode))
    )
    op = ClarityExportOperator(task_id="export", dimensions="OS", destination=str(target))
    with pytest.raises(OSError, match="No space left"):
        op.execute(make_context())

    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["os.raw.json"]


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
