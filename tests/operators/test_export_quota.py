"""ClarityExportOperator's decisions on stale windows and an exhausted quota."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from airflow.providers.standard.triggers.temporal import DateTimeTrigger

from airflow_provider_clarity.exceptions import (
    ClarityQuotaExceededError,
    ClarityRequestError,
)
from airflow_provider_clarity.operators.export import ClarityExportOperator
from airflow_provider_clarity.quota import MemoryLedgerStore, QuotaLedger
from airflow_provider_clarity.testing.emulator import ClarityEmulator
from airflow_provider_clarity.version_compat import (
    AirflowRescheduleException,
    AirflowSkipException,
    TaskDeferred,
)
from airflow_provider_clarity.windows.utc import utc_text
from tests.operators.fixtures import PROJECT, make_context, spend_ledger

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
    assert utc_text(ledger.next_reset()) in message
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


def test_an_export_that_waits_too_long_for_its_projects_call_lock_looks_again_later(
    conn: str, clarity_emulator: ClarityEmulator, ledger_store: MemoryLedgerStore
) -> None:
    """Another export of the project holds the call lock past any call's length (here 16 s
    for a 1 s timeout and no retry): this one is rescheduled, not failed, and calls nothing."""
    from airflow_provider_clarity.quota import ledger_key
    from airflow_provider_clarity.quota import lock as quota_lock

    op = ClarityExportOperator(
        task_id="export", hook_params={"timeout": 1, "max_retries": 0}, deferrable=False
    )
    before = datetime.now(UTC)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(quota_lock, "CALL_LOCK_TIMEOUT_SECONDS", 1.0)  # the hook's length decides
        with (
            quota_lock.ledger_lock(f"{ledger_key(PROJECT)}.calls"),
            pytest.raises(AirflowRescheduleException) as info,
        ):
            op.execute(make_context())
    assert info.value.reschedule_date >= before + timedelta(seconds=30)
    assert clarity_emulator.total_requests() == 0
    assert ledger_store.data is None
