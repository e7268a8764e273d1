"""The provider's metrics reach a real StatsD listener, through Airflow's own metrics client.

A UDP socket on 127.0.0.1 plays the StatsD server. The DAG runs with ``dag.test()`` in a
fresh Python process (``python dag_file.py``), so Airflow's metrics client reads
``[metrics]`` from that process's environment, as a worker's task process does, on every
supported Airflow. The emulator allows 2 calls a day while the connection believes in 10:
the third call gets Clarity's 429, as when calls made outside Airflow spent the day.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from airflow_provider_clarity.quota import ledger_key
from airflow_provider_clarity.testing.emulator import ClarityEmulator
from tests.conftest import DAGS_FOLDER

PROJECT = "metrics-project"
DAG_SOURCE = """
from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_clarity.operators.export import ClarityExportOperator

BASE = "{base}"

with DAG("clarity_metrics_probe", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
    first = ClarityExportOperator(
        task_id="by_device", dimensions=["Device"], max_snapshot_age=3600,
        destination=f"{{BASE}}/by_device.parquet",
    )
    shared = ClarityExportOperator(  # the same request: another task's answer, no call
        task_id="by_device_again", dimensions=["Device"], max_snapshot_age=3600,
        destination=f"{{BASE}}/by_device_again.parquet",
    )
    second = ClarityExportOperator(
        task_id="by_os", dimensions=["OS"], destination=f"{{BASE}}/by_os.parquet"
    )
    limited = ClarityExportOperator(  # the emulator's third call: 429
        task_id="by_country", dimensions=["Country"], on_quota_exhausted="skip",
        destination=f"{{BASE}}/by_country.parquet",
    )
    first >> shared >> second >> limited

if __name__ == "__main__":
    print("RUN_STATE", dag.test().state)
"""


class StatsdListener:
    """A StatsD server's socket: every datagram sent to it is kept by the kernel until read."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = int(self.sock.getsockname()[1])

    def lines(self) -> list[str]:
        """What arrived so far (the sender has exited: nothing is still on its way)."""
        found = []
        while True:
            try:
                data = self.sock.recv(65535)
            except BlockingIOError:
                return found
            found.extend(data.decode().splitlines())


@pytest.fixture
def listener() -> Iterator[StatsdListener]:
    server = StatsdListener()
    try:
        yield server
    finally:
        server.sock.close()


def _statsd_env(port: int, **metrics_env: str) -> dict[str, str]:
    return {
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(port),
        **metrics_env,
    }


def _run_probe_dag(tmp_path: Path, port: int, **metrics_env: str) -> None:
    """The probe DAG in a fresh process, StatsD pointed at ``port``: 3 calls, a 429 last."""
    with ClarityEmulator(daily_limit=2) as emulator:
        token = emulator.issue_token(PROJECT, expires_in=timedelta(days=1))
        env = _statsd_env(port, **metrics_env)
        env["AIRFLOW_CONN_CLARITY_DEFAULT"] = emulator.airflow_conn_json(token, project_id=PROJECT)
        _run_dag_file(DAG_SOURCE.format(base=(tmp_path / "out").as_uri()), env)
        assert emulator.total_requests() == 3


def _run_dag_file(source: str, env: dict[str, str]) -> None:
    """``python dag_file.py`` (its ``__main__`` runs ``dag.test()``) in the dags folder."""
    from airflow.models.variable import Variable

    dag_file = DAGS_FOLDER / "clarity_metrics_dag.py"
    dag_file.write_text(source)
    Variable.delete(ledger_key(PROJECT))
    try:
        result = subprocess.run(
            [sys.executable, str(dag_file)],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        dag_file.unlink()
        Variable.delete(ledger_key(PROJECT))
    assert "RUN_STATE success" in result.stdout, result.stdout[-4000:] + result.stderr[-4000:]


def _clarity(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("airflow.clarity.")]


def test_a_dag_test_run_sends_the_quota_metrics_to_statsd(
    airflow_db: Path, listener: StatsdListener, tmp_path: Path
) -> None:
    _run_probe_dag(
        tmp_path,
        listener.port,
        AIRFLOW__METRICS__STATSD_ON="True",
        # InfluxDB-style tags, so the tagged names show their tags on the wire.
        AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED="True",
    )

    lines = _clarity(listener.lines())
    tag = f"project_id={PROJECT}"
    per_project = [
        line for line in lines if line.startswith(f"airflow.clarity.calls_remaining.{PROJECT}:")
    ]
    tagged = [line for line in lines if line.startswith(f"airflow.clarity.calls_remaining,{tag}:")]
    # One gauge per ledger write, under both names: 3 calls recorded, 3 outcomes, the last
    # one a 429 that leaves nothing until the reset.
    assert [line.split(":")[1] for line in per_project] == [
        "9|g",
        "9|g",
        "8|g",
        "8|g",
        "7|g",
        "0|g",
    ]
    assert [line.split(":")[1] for line in tagged] == [line.split(":")[1] for line in per_project]
    spent = [
        line.split(":")[1]
        for line in lines
        if line.startswith(f"airflow.clarity.calls_spent.{PROJECT}:")
    ]
    assert spent == ["1|g", "1|g", "2|g", "2|g", "3|g", "3|g"]
    assert f"airflow.clarity.rate_limited.{PROJECT}:1|c" in lines
    assert f"airflow.clarity.rate_limited,{tag}:1|c" in lines
    assert f"airflow.clarity.snapshots_reused.{PROJECT},source=shared:1|c" in lines
    assert f"airflow.clarity.snapshots_reused,{tag},source=shared:1|c" in lines
    # Nothing here was uncharged, waited or degraded.
    assert not [
        line for line in lines if "uncharged" in line or "wait" in line or "degraded" in line
    ]


def test_nothing_is_sent_when_metrics_are_off(
    airflow_db: Path, listener: StatsdListener, tmp_path: Path
) -> None:
    # Only the address is set: [metrics] statsd_on keeps its default, off.
    _run_probe_dag(tmp_path, listener.port)
    assert listener.lines() == []


LEDGER_DAG = """
from datetime import datetime, timedelta

from airflow.sdk import DAG, task

with DAG("clarity_metrics_ledger", schedule=None, start_date=datetime(2026, 1, 1)) as dag:

    @task
    def ledger_events():
        from airflow_provider_clarity.quota.ledger import QuotaLedger
        from airflow_provider_clarity.quota.store import MemoryLedgerStore

        ledger = QuotaLedger(
            "{project}", daily_limit=2, store=MemoryLedgerStore(), degraded_cooldown_seconds=600
        )
        ledger.before_call()
        ledger.after_call(None, "401")
        ledger.before_call()
        ledger.after_call(None, "connection_refused")
        ledger.mark_degraded()
        ledger.wake_at(floor=timedelta(seconds=30), spacing=timedelta(seconds=60))

    ledger_events()

if __name__ == "__main__":
    print("RUN_STATE", dag.test().state)
"""


def test_uncharged_outcomes_waits_and_cool_downs_are_counted(
    airflow_db: Path, listener: StatsdListener
) -> None:
    """The ledger's other events, from a task (where Airflow sets up its metrics client)."""
    _run_dag_file(
        LEDGER_DAG.format(project=PROJECT),
        _statsd_env(listener.port, AIRFLOW__METRICS__STATSD_ON="True"),
    )

    lines = _clarity(listener.lines())
    per_project = [line for line in lines if f".{PROJECT}:" in line]
    assert [line for line in per_project if "uncharged" in line] == [
        f"airflow.clarity.calls_uncharged.{PROJECT}:1|c"
    ] * 2
    assert f"airflow.clarity.degraded_cooldowns.{PROJECT}:1|c" in per_project
    assert f"airflow.clarity.quota_waits.{PROJECT}:1|c" in per_project
    [waited] = [
        line for line in per_project if line.startswith("airflow.clarity.quota_wait_seconds.")
    ]
    # The cool-down (600 s) is what the waiter waits for.
    assert waited == f"airflow.clarity.quota_wait_seconds.{PROJECT}:600|c"
    # A call counts while it is in flight, and stops counting once its outcome is uncharged;
    # the cool-down and the wait write the ledger too.
    spent = [line.split(":")[1] for line in per_project if "calls_spent" in line]
    assert spent == ["1|g", "0|g", "1|g", "0|g", "0|g", "0|g"]


def test_the_metrics_table_names_every_metric_the_provider_sends() -> None:
    import re

    from tests.conftest import REPO_ROOT

    source = (REPO_ROOT / "airflow_provider_clarity" / "quota" / "metrics.py").read_text()
    sent = {f"clarity.{name}" for name in re.findall(r'_send\("\w+", "(\w+)"', source)}
    table = (REPO_ROOT / "docs" / "metrics.md").read_text().split("## Names and tags", 1)[1]
    documented = set(re.findall(r"^\| `(clarity\.\w+)` \|", table, re.MULTILINE))
    assert documented == sent
    assert len(sent) == 8
