"""ClarityExportOperator keeps Clarity's raw answer and reuses it instead of a new call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider_clarity import normalize
from airflow_provider_clarity.exceptions import (
    ClarityDimensionFallbackError,
)
from airflow_provider_clarity.operators.export import ClarityExportOperator
from airflow_provider_clarity.snapshots.raw import raw_variable_key
from airflow_provider_clarity.testing.emulator import ClarityEmulator
from airflow_provider_clarity.version_compat import HAS_TASK_STATE_STORE
from tests.operators.fixtures import PROJECT, FakeTaskStateStore, make_context

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
