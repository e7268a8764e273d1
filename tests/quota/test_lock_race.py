"""Several OS processes spend one project's calls at once: no more than the limit reaches Clarity.

Each process is a script calling ``ClarityHook.get_live_insights`` directly (counted by default),
on a metadata DB of the test's own (a copy of the suite's migrated sqlite DB), against an
emulator that allows far more than the ledger's 10 calls, so the emulator's request count shows
every call the ledger let through. Without the ledger lock these races let 13-16 calls through.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_clarity.quota import ledger_key
from airflow_provider_clarity.testing import ClarityEmulator
from tests.conftest import AIRFLOW_HOME

PROJECT = "race-project"
CONN_ID = "clarity_race"

WORKER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from airflow_provider_clarity.exceptions import ClarityQuotaExceededError
    from airflow_provider_clarity.hooks.clarity import ClarityHook

    go, calls = Path(sys.argv[1]), int(sys.argv[2])
    hook = ClarityHook(sys.argv[3], max_retries=0)
    hook.check_offline()  # read the connection before the start line, like a warm task
    from airflow.models.variable import Variable  # and open the metadata DB
    Variable.get("warm-up", default_var=None)
    while not go.exists():
        time.sleep(0.005)
    result = {"ok": 0, "refused": 0}
    for _ in range(calls):
        try:
            hook.get_live_insights(1, "OS")
            result["ok"] += 1
        except ClarityQuotaExceededError:
            result["refused"] += 1
    print("RESULT " + json.dumps(result))
    """
)


@pytest.fixture
def race_home(airflow_db: Path, tmp_path: Path) -> Path:
    """An AIRFLOW_HOME with its own copy of the migrated metadata DB: only the racers write it."""
    home = tmp_path / "home"
    home.mkdir()
    with (
        closing(sqlite3.connect(AIRFLOW_HOME / "airflow.db")) as source,
        closing(sqlite3.connect(home / "airflow.db")) as target,
    ):
        source.backup(target)
    return home


def _env(home: Path, emulator: ClarityEmulator, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            f"AIRFLOW_CONN_{CONN_ID.upper()}": emulator.airflow_conn_json(
                token, project_id=PROJECT, daily_limit=10
            ),
            "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")])),
        }
    )
    return env


def _race(
    home: Path, emulator: ClarityEmulator, processes: int, calls: int
) -> list[dict[str, int]]:
    """Start ``processes`` racers, let them warm up, then start them all at one moment."""
    token = emulator.issue_token(PROJECT)
    script = home / "racer.py"
    script.write_text(WORKER)
    go = home / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(go), str(calls), CONN_ID],
            env=_env(home, emulator, token),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    time.sleep(15)  # every racer imports Airflow and opens the DB first (3-10 s on 2 cores)
    go.touch()
    started = time.monotonic()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err[-3000:]
        line = next(x for x in out.splitlines() if x.startswith("RESULT "))
        results.append(json.loads(line.removeprefix("RESULT ")))
    print(f"racers done {time.monotonic() - started:.1f} s after the start line")
    return results


def _ledger(home: Path) -> dict[str, Any]:
    """The project's ledger document, read through the core Variable model as usage does."""
    key = ledger_key(PROJECT)
    code = (
        "import json\nfrom airflow.models.variable import Variable\n"
        f"print('LEDGER', json.dumps(Variable.get({key!r}, deserialize_json=True)))"
    )
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("LEDGER "))
    return json.loads(line.removeprefix("LEDGER "))


@pytest.mark.timeout(400)
def test_racing_processes_never_send_more_calls_than_the_window_allows(race_home: Path) -> None:
    with ClarityEmulator(daily_limit=1000) as emulator:
        results = _race(race_home, emulator, processes=5, calls=3)
        sent = emulator.total_requests(PROJECT)
    assert sum(r["ok"] for r in results) == 10
    assert sum(r["refused"] for r in results) == 5
    assert sent == 10, f"{sent} calls reached Clarity; the ledger allows 10"
    charged = [c for c in _ledger(race_home)["calls"] if c["outcome"] == "200"]
    assert len(charged) == 10


@pytest.mark.timeout(400)
def test_the_last_free_call_goes_to_exactly_one_process(race_home: Path) -> None:
    with ClarityEmulator(daily_limit=1000) as emulator:
        token = emulator.issue_token(PROJECT)
        # Nine calls already spent today, by one script counted in the ledger.
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from airflow_provider_clarity.hooks.clarity import ClarityHook\n"
                f"h = ClarityHook({CONN_ID!r}, max_retries=0)\n"
                "for _ in range(9): h.get_live_insights(1, 'OS')",
            ],
            env=_env(race_home, emulator, token),
            check=True,
            capture_output=True,
        )
        assert emulator.total_requests(PROJECT) == 9
        results = _race(race_home, emulator, processes=4, calls=1)
        sent = emulator.total_requests(PROJECT)
    assert sorted(r["ok"] for r in results) == [0, 0, 0, 1]
    assert sent == 10
