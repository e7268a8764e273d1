"""ClarityExportOperator in whole DAGs run with dag.test(): retries and asset events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider_clarity import normalize
from airflow_provider_clarity.quota import QuotaLedger
from airflow_provider_clarity.testing.emulator import ClarityEmulator
from airflow_provider_clarity.version_compat import HAS_TASK_STATE_STORE
from tests.operators.fixtures import _write_dag, assert_no_token


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
