"""Direct hook calls spend the same daily calls as the operator, so the ledger counts them.

A hand-written ``@task`` with the hook is counted in the project's ledger by default, is refused
when the ledger says no call is left, and meets the same outage cool-down; ``count_calls=False``
opts out. Outside a task the log says whether the call was counted.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_clarity.exceptions import (
    ClarityDegradedError,
    ClarityLedgerError,
    ClarityQuotaExceededError,
    ClarityRequestError,
    ClarityServerError,
)
from airflow_provider_clarity.hooks.clarity import ClarityHook
from airflow_provider_clarity.quota import QuotaLedger, ledger_key
from airflow_provider_clarity.quota.lock import LockScope
from airflow_provider_clarity.testing import ClarityEmulator
from tests.hooks.fixtures import CONN_ID, PROJECT, logged


@pytest.fixture
def ledger(airflow_db: Path) -> Iterator[QuotaLedger]:
    """The project's real Variable-backed ledger, empty before and after the test."""
    from airflow.models.variable import Variable

    Variable.delete(ledger_key(PROJECT))
    yield QuotaLedger(PROJECT)
    Variable.delete(ledger_key(PROJECT))


def test_a_direct_call_is_counted_in_the_projects_ledger(
    hook: ClarityHook, ledger: QuotaLedger, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        hook.get_live_insights(1, ["Device", "OS"])
    [record] = ledger.records()
    assert (record.outcome, record.request) == ("200", "numOfDays=1 dimensions=Device,OS")
    assert record.caller == "outside-airflow"
    assert ledger.remaining() == 9
    assert "is counted in the Clarity quota ledger (Variable clarity_quota__" in caplog.text


def test_count_calls_false_sends_uncounted(
    hook: ClarityHook, ledger: QuotaLedger, emulator: ClarityEmulator
) -> None:
    ClarityHook(CONN_ID, count_calls=False).get_live_insights(1, "OS")
    assert emulator.total_requests(PROJECT) == 1
    assert ledger.records() == []


def test_a_direct_call_is_refused_before_sending_when_the_ledger_is_spent(
    hook: ClarityHook, ledger: QuotaLedger, emulator: ClarityEmulator
) -> None:
    for _ in range(10):
        ledger.before_call(None)
        ledger.after_call(None, "200")
    with pytest.raises(ClarityQuotaExceededError, match="0 left"):
        hook.get_live_insights(1, "OS")
    assert emulator.total_requests() == 0


def test_direct_calls_during_an_outage_wait_out_the_cool_down(
    hook: ClarityHook, ledger: QuotaLedger, emulator: ClarityEmulator
) -> None:
    """Three calls into a 500 outage: the first spends its 3 attempts, the next two wait."""
    emulator.inject_fault("server_error", count=100)
    with pytest.raises(ClarityServerError, match="500"):
        hook.get_live_insights(1, "OS")
    for _ in range(2):
        with pytest.raises(ClarityDegradedError):
            hook.get_live_insights(1, "OS")
    assert emulator.total_requests() == 3
    assert ledger.remaining() == 0  # the cool-down holds every caller, the operator's too
    assert len(ledger.records()) == 3


def test_outside_a_task_without_a_metadata_db_the_log_says_it_was_not_counted(
    tmp_path: Path, emulator: ClarityEmulator, token: str
) -> None:
    """A plain script with no Airflow DB: the call goes through, and the log says uncounted."""
    home = tmp_path / "empty-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'none.db'}",
            f"AIRFLOW_CONN_{CONN_ID.upper()}": emulator.airflow_conn_json(
                token, project_id=PROJECT
            ),
        }
    )
    script = textwrap.dedent(
        f"""
        from airflow_provider_clarity.hooks.clarity import ClarityHook
        blocks = ClarityHook({CONN_ID!r}).get_live_insights(1, "OS")
        print("BLOCKS", len(blocks))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "BLOCKS" in done.stdout
    assert "is NOT counted in the Clarity quota ledger" in done.stdout + done.stderr
    assert emulator.total_requests(PROJECT) == 1


@pytest.fixture
def celery_without_shared_locks(monkeypatch: pytest.MonkeyPatch) -> LockScope:
    """Airflow configured for Celery (tasks on several hosts) and no [clarity] ledger_lock_dir."""
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    monkeypatch.delenv("AIRFLOW__CLARITY__LEDGER_LOCK_DIR", raising=False)
    from airflow_provider_clarity.quota.lock import lock_scope

    scope = lock_scope()
    assert not scope.covers_every_writer
    return scope


def test_on_several_hosts_a_writer_outside_the_pool_is_refused_before_a_call(
    hook: ClarityHook,
    ledger: QuotaLedger,
    emulator: ClarityEmulator,
    celery_without_shared_locks: LockScope,
) -> None:
    with pytest.raises(ClarityLedgerError) as caught:
        hook.get_live_insights(1, "OS")
    message = str(caught.value)
    assert "CeleryExecutor" in message and "ledger_lock_dir" in message
    assert "pool 'clarity_api'" in message and "No Clarity call was made" in message
    assert emulator.total_requests() == 0
    assert ledger.records() == []


def test_a_shared_lock_dir_lets_every_writer_count_on_several_hosts(
    hook: ClarityHook,
    ledger: QuotaLedger,
    emulator: ClarityEmulator,
    celery_without_shared_locks: LockScope,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("AIRFLOW__CLARITY__LEDGER_LOCK_DIR", str(tmp_path / "shared"))
    hook.get_live_insights(1, "OS")
    assert emulator.total_requests() == 1
    assert len(ledger.records()) == 1
    assert (tmp_path / "shared" / f"{ledger_key(PROJECT)}.lock").exists()


@pytest.fixture
def pool_slots(airflow_db: Path) -> Iterator[Callable[[int], None]]:
    """Set the ``clarity_api`` pool's slots in the metadata DB; removed afterwards."""
    from airflow.models.pool import Pool

    def _set(slots: int) -> None:
        Pool.create_or_update_pool("clarity_api", slots, "Clarity API calls", False)

    yield _set
    Pool.delete_pool("clarity_api")


def test_a_multi_slot_pool_is_a_fault_where_the_ledger_relies_on_it(
    hook: ClarityHook,
    pool_slots: Callable[[int], None],
    celery_without_shared_locks: LockScope,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    pool_slots(4)
    ok, message = hook.test_connection()
    assert not ok
    assert "Fault: the pool 'clarity_api' has 4 slots" in message
    assert "airflow pools set clarity_api 1" in message
    pool_slots(1)
    ok, message = hook.test_connection()
    assert ok and "Fault" not in message
    # With a lock every host shares, the ledger no longer relies on the pool.
    pool_slots(4)
    monkeypatch.setenv("AIRFLOW__CLARITY__LEDGER_LOCK_DIR", str(tmp_path))
    ok, message = hook.test_connection()
    assert ok and "Fault" not in message


def test_a_direct_call_in_a_task_is_counted_under_the_task(
    run_dag: Any,
    ledger: QuotaLedger,
    emulator: ClarityEmulator,
    token: str,
    set_connection: Callable[..., None],
    tmp_path: Path,
) -> None:
    """The docs' hand-written task: counted under its task instance; the opt-out is not."""
    set_connection(emulator.base_url, token, project_id=PROJECT)
    dag_file = tmp_path / "clarity_direct_hook.py"
    dag_file.write_text(
        textwrap.dedent(
            f"""
            from datetime import datetime

            from airflow.sdk import DAG, task

            from airflow_provider_clarity.hooks.clarity import ClarityHook

            with DAG("clarity_direct_hook", schedule=None, start_date=datetime(2025, 1, 1)):

                @task
                def counted():
                    return len(ClarityHook({CONN_ID!r}).get_live_insights(1, ["Device", "OS"]))

                @task
                def uncounted():
                    hook = ClarityHook({CONN_ID!r}, count_calls=False)
                    return len(hook.get_live_insights(1, "OS"))

                counted() >> uncounted()
            """
        )
    )
    run = run_dag(dag_file, "clarity_direct_hook")
    assert run.state == "success"
    assert emulator.total_requests(PROJECT) == 2
    [record] = ledger.records()
    assert record.caller.startswith("clarity_direct_hook/counted/")
    assert record.request == "numOfDays=1 dimensions=Device,OS"


def test_httphooks_run_is_refused_so_nothing_reaches_clarity_uncounted(
    hook: ClarityHook, emulator: ClarityEmulator
) -> None:
    for call in (
        lambda: hook.run("/export-data/api/v1/project-live-insights"),
        lambda: hook.run_with_advanced_retry({}, "/export-data/api/v1/project-live-insights"),
    ):
        with pytest.raises(ClarityRequestError, match="get_live_insights"):
            call()
    assert emulator.total_requests() == 0


def test_an_observer_failing_after_the_answer_does_not_lose_the_answer(
    hook: ClarityHook,
    emulator: ClarityEmulator,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A ledger that cannot record the outcome (its record stays pending and counts)."""

    class Failing:
        def before_call(self, request: Any) -> None:
            pass

        def after_call(self, request: Any, outcome: str) -> None:
            raise ClarityLedgerError("the Variable cannot be written")

    payload = hook.get_live_insights(1, "OS", observer=Failing())
    assert payload and emulator.total_requests() == 1
    assert "could not be recorded by its observer" in logged(caplog, capsys)


def test_a_script_that_reaches_the_db_but_cannot_write_the_ledger_is_refused(
    hook: ClarityHook, emulator: ClarityEmulator, airflow_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only an unreachable DB lets a script's call go uncounted; a failing write refuses it."""
    from airflow_provider_clarity.quota import VariableLedgerStore

    def broken(self: Any, data: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(VariableLedgerStore, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        hook.get_live_insights(1, "OS")
    assert emulator.total_requests() == 0
