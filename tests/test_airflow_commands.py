"""``airflow clarity usage``: the provider's ``cli`` entry, run as a real ``airflow`` command, and
the ``python -m`` form that works on every Airflow (3.1 has no provider commands)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_clarity.quota import QuotaLedger, ledger_key
from airflow_provider_clarity.version_compat import HAS_PROVIDER_CLI

PROJECT = "cli-project"


@pytest.fixture
def cli_ledger(airflow_db: Path) -> Iterator[QuotaLedger]:
    """A ledger for PROJECT in the suite's metadata DB, removed afterwards."""
    from airflow.models.variable import Variable

    Variable.delete(ledger_key(PROJECT))
    yield QuotaLedger(PROJECT, daily_limit=3, caller="report_dag/export/manual__1/-1")
    Variable.delete(ledger_key(PROJECT))


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command), env=os.environ.copy(), capture_output=True, text=True, check=False
    )


def _airflow(*args: str) -> subprocess.CompletedProcess[str]:
    return _run(str(Path(sys.executable).parent / "airflow"), *args)


USAGE_COMMANDS = [
    pytest.param((sys.executable, "-m", "airflow_provider_clarity.quota"), id="python-m"),
    pytest.param(
        ("airflow", "clarity"),
        id="airflow-clarity",
        marks=pytest.mark.skipif(not HAS_PROVIDER_CLI, reason="provider CLI commands: 3.2+"),
    ),
]


@pytest.mark.parametrize("command", USAGE_COMMANDS)
def test_usage_prints_the_ledger_report(cli_ledger: QuotaLedger, command: tuple[str, ...]) -> None:
    for outcome in ("200", "500"):
        cli_ledger.before_call(None)
        cli_ledger.after_call(None, outcome)

    if command[0] == "airflow":
        done = _airflow(*command[1:], "usage", PROJECT)
    else:
        done = _run(*command, "usage", PROJECT)

    assert done.returncode == 0, done.stderr[-2000:]
    # Its own line: Airflow 3.1 and 3.2 print their alembic plugin log lines first.
    assert cli_ledger.usage().splitlines()[0] in done.stdout.splitlines()
    assert "remaining:  1" in done.stdout
    assert "report_dag/export/manual__1/-1: 2 call(s)" in done.stdout
    assert "(resolved 'cli-project' as project id, settings stored by the last task)" in done.stdout


def test_airflow_clarity_is_listed_in_the_airflow_cli(airflow_db: Path) -> None:
    done = _airflow("clarity", "--help")

    if not HAS_PROVIDER_CLI:  # as docs/compatibility.md says: use the python -m forms there
        assert done.returncode != 0
        assert "invalid choice: 'clarity'" in done.stderr
        return
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage" in done.stdout and "Clarity" in done.stdout
