"""The usage command, run from a shell outside any task."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from airflow_provider_clarity.quota import (
    ledger_key,
)


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

    # By project id (no such connection): the settings the last task stored are used.
    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")
    assert quota.main(["usage", "cli-project"]) == 0
    out = capsys.readouterr().out
    assert "reserve 1 -> 9 for Airflow" in out
    assert "remaining:  8" in out
    assert "settings stored by the last task" in out
