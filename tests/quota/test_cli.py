"""The usage command, run from a shell outside any task."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_clarity.quota import MemoryLedgerStore, QuotaLedger, ledger_key


def test_usage_command_reads_the_variable_outside_any_task(airflow_db: Path, monkeypatch, capsys):
    from airflow.configuration import conf
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    from airflow_provider_clarity import quota

    now = datetime.now(UTC)
    document = {
        "version": 1,
        "project_id": "cli-project",
        "settings": {"daily_limit": 10, "reserve": 1, "window": "utc_day"},
        "exhausted_until": None,
        "calls": [
            {
                "id": "a1",
                "at": now.isoformat(),
                "done_at": now.isoformat(),
                "caller": "nightly/export/run_1/-1",
                "outcome": "200",
                "request": "numOfDays=1 dimensions=OS",
            }
        ],
    }
    # Subprocesses must encrypt and decrypt with this process's Fernet key.
    env = {**os.environ, "AIRFLOW__CORE__FERNET_KEY": conf.get("core", "fernet_key")}
    airflow_bin = str(Path(sys.executable).parent / "airflow")
    subprocess.run(
        [airflow_bin, "variables", "set", ledger_key("cli-project"), json.dumps(document)],
        check=True,
        capture_output=True,
        env=env,
    )
    with create_session() as session:
        session.add(
            Connection(
                conn_id="clarity_cli",
                conn_type="clarity",
                password="not-a-real-token",
                extra=json.dumps({"project_id": "cli-project", "reserve": 2}),
            )
        )

    # By connection id, in a fresh process: the connection and Variable live in the DB only.
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_clarity.quota", "usage", "clarity_cli"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert "Clarity quota for project 'cli-project'" in result.stdout
    assert "limit:      10 calls, reserve 2 -> 8 for Airflow" in result.stdout
    assert "remaining:  7" in result.stdout
    assert "nightly/export/run_1/-1: 1 call(s)" in result.stdout
    assert "(resolved 'clarity_cli' as connection 'clarity_cli')" in result.stdout
    assert "not-a-real-token" not in result.stdout + result.stderr

    # By project id: the settings of the connection that names it, which the exports use,
    # not the ones the last task stored (reserve 1).
    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")
    assert quota.main(["usage", "cli-project"]) == 0
    out = capsys.readouterr().out
    assert "reserve 2 -> 8 for Airflow" in out
    assert "remaining:  7" in out
    assert "(resolved 'cli-project' as project id, settings of connection 'clarity_cli')" in out

    # With no connection naming it: the stored settings, and the report says so.
    with create_session() as session:
        session.query(Connection).filter_by(conn_id="clarity_cli").delete()
    assert quota.main(["usage", "cli-project"]) == 0
    out = capsys.readouterr().out
    assert "reserve 1 -> 9 for Airflow" in out
    assert "remaining:  8" in out
    assert "settings stored by the last task" in out
    assert "no clarity connection Airflow can list names project 'cli-project'" in out


# ------------------------------------------------------------------ hostile strings, unknown ids

UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


@pytest.fixture
def ledgers(airflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """``put(project_id, caller=..., request=..., **settings)``: one real call in a ledger
    Variable of the suite's DB; every ledger and clarity connection made here is removed."""
    from airflow.models.variable import Variable

    from airflow_provider_clarity.request import ClarityRequest

    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")
    made: list[str] = []

    def put(project_id: str, caller: str = "d/t/r/-1", request: str = "", **settings: Any) -> None:
        store = MemoryLedgerStore()
        ledger = QuotaLedger(project_id, store=store, caller=caller, **settings)
        ledger.before_call(ClarityRequest.build(1, ["OS"]))
        ledger.after_call(None, "200")
        document = store.data
        assert document is not None
        if request:
            document["calls"][0]["request"] = request
        Variable.set(ledger_key(project_id), json.dumps(document))
        made.append(ledger_key(project_id))

    yield put
    for key in made:
        Variable.delete(key)


def _connection(conn_id: str, **extras: Any) -> None:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(Connection).filter_by(conn_id=conn_id).delete()
        session.add(Connection(conn_id=conn_id, conn_type="clarity", extra=json.dumps(extras)))


def _drop_connection(conn_id: str) -> None:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(Connection).filter_by(conn_id=conn_id).delete()


def test_usage_shows_hostile_strings_escaped_never_raw(
    ledgers: Callable[..., None], capsys: pytest.CaptureFixture[str]
) -> None:
    from airflow_provider_clarity import quota

    caller = "dag/t/run/-1\x1b]0;owned\x07\x1b[2J\r\u202eevil\u2066\x9b31m\nremaining:  10"
    ledgers("hostile-project", caller=caller, request="numOfDays=1\x1b[5m\u202d blink")

    assert quota.main(["usage", "hostile-project"]) == 0
    out, err = capsys.readouterr()

    assert not UNSAFE.findall(out + err), UNSAFE.findall(out + err)
    # Shown, as escapes a reader can see; the forged line is part of the caller's line.
    assert "\\x1b]0;owned\\x07\\x1b[2J\\r\\u202eevil\\u2066\\x9b31m\\nremaining:  10" in out
    assert "numOfDays=1\\x1b[5m\\u202d blink" in out
    assert "\nremaining:  10" not in out and "remaining:  9" in out


def test_an_unknown_target_is_an_error_that_lists_the_known_ones(
    ledgers: Callable[..., None], capsys: pytest.CaptureFixture[str]
) -> None:
    from airflow_provider_clarity import quota

    ledgers("known-project")
    _connection("clarity_known", project_id="connected-project")
    try:
        assert quota.main(["usage", "nosuch"]) == 2
    finally:
        _drop_connection("clarity_known")
    out, err = capsys.readouterr()

    assert "remaining" not in out + err
    assert "'nosuch' is neither a connection id nor a Clarity project Airflow knows" in err
    assert "  known-project\n" in err
    assert "  clarity_known: project 'connected-project'\n" in err


def test_usage_of_a_project_counts_with_its_connection_not_the_stored_settings(
    ledgers: Callable[..., None], capsys: pytest.CaptureFixture[str]
) -> None:
    from airflow_provider_clarity import quota

    ledgers("generous-project", daily_limit=1000)  # the document says 1000 a day
    _connection("clarity_generous", project_id="generous-project")  # the exports: 10
    try:
        assert quota.main(["usage", "generous-project"]) == 0
    finally:
        _drop_connection("clarity_generous")
    out = capsys.readouterr().out

    assert "limit:      10 calls, reserve 0 -> 10 for Airflow" in out
    assert "remaining:  9" in out and "999" not in out
    assert "settings of connection 'clarity_generous'" in out


def test_usage_shows_a_pool_fault_first(
    ledgers: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from airflow.models.pool import Pool

    from airflow_provider_clarity import quota

    ledgers("pooled-project")
    # Tasks on several hosts and no shared lock dir: the 1-slot pool is the only guard.
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    monkeypatch.delenv("AIRFLOW__CLARITY__LEDGER_LOCK_DIR", raising=False)
    Pool.create_or_update_pool("clarity_api", 4, "Clarity API calls", include_deferred=False)
    try:
        assert quota.main(["usage", "pooled-project"]) == 0
    finally:
        Pool.delete_pool("clarity_api")
    out = capsys.readouterr().out

    first = out.splitlines()[0]
    assert first.startswith("!! Fault: the pool 'clarity_api' has 4 slots"), out
    assert "remaining:  9" in out
