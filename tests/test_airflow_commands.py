"""``airflow clarity usage``: the provider's ``cli`` entry, run as a real ``airflow`` command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_clarity.quota import QuotaLedger, ledger_key

PROJECT = "cli-project"


@pytest.fixture
def cli_ledger(airflow_db: Path) -> Iterator[QuotaLedger]:
    """A ledger for PROJECT in the suite's metadata DB, removed afterwards."""
    from airflow.models.variable import Variable

    Variable.delete(ledger_key(PROJECT))
    yield QuotaLedger(PROJECT, daily_limit=3, caller="report_dag/export/manual__1/-1")
    Variable.delete(ledger_key(PROJECT))


def _airflow(*args: str) -> subprocess.CompletedProcess[str]:
    airflow = str(Path(sys.executable).parent / "airflow")
    return subprocess.run(
        [airflow, *args], env=os.environ.copy(), capture_output=True, text=True, check=False
    )


def test_airflow_clarity_usage_prints_the_ledger_report(cli_ledger: QuotaLedger) -> None:
    for outcome in ("200", "500"):
        cli_ledger.before_call(None)
        cli_ledger.after_call(None, outcome)

    done = _airflow("clarity", "usage", PROJECT)

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(cli_ledger.usage().splitlines()[0])
    assert "remaining:  1" in done.stdout
    assert "report_dag/export/manual__1/-1: 2 call(s)" in done.stdout
    assert "(resolved 'cli-project' as project id, settings stored by the last task)" in done.stdout


def test_airflow_clarity_is_listed_in_the_airflow_cli(airflow_db: Path) -> None:
    done = _airflow("clarity", "--help")

    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage" in done.stdout and "Clarity" in done.stdout
