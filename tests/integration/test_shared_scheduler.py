"""Shared snapshots under a real scheduler: three DAGs asking ``Device`` spend one call.

Runs tests/integration/dags/shared_scenario.py on the harness's Airflow (conftest.py): the
index Variable is written through the Task SDK on real workers, and the answer the first
export kept is read by the other two, which spend no call.
"""

from __future__ import annotations

import json

import pytest

from airflow_provider_clarity.testing.emulator import ClarityEmulator
from tests.integration.cluster import AirflowCluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SHARED_DAGS = ("shared_team_1", "shared_team_2", "shared_team_3")
PROJECT = "project-shared"


def test_three_dags_asking_the_same_breakdown_spend_one_call(
    airflow_cluster: AirflowCluster,
) -> None:
    cluster = airflow_cluster
    with ClarityEmulator() as emu:
        token = emu.issue_token(PROJECT)
        spec = json.loads(emu.airflow_conn_json(token, PROJECT))
        cluster.set_connection(
            "clarity_shared",
            conn_type=spec["conn_type"],
            host=spec["host"],
            password=spec["password"],
            extra=spec["extra"],
        )
        cluster.wait_for_dags(SHARED_DAGS)
        runs = [(dag_id, cluster.trigger(dag_id)) for dag_id in SHARED_DAGS]
        final = cluster.wait_for_runs(runs, timeout=300)
        calls = emu.calls(PROJECT)

    assert final == dict.fromkeys(runs, "success")
    assert calls == 1
    logs = {dag_id: cluster.task_log(dag_id, run_id, "device") for dag_id, run_id in runs}
    reused = [dag_id for dag_id, log in logs.items() if "Reusing the snapshot" in log]
    assert len(reused) == 2, logs
    raw = cluster.get_variable(f"clarity_snapshots__{PROJECT}")
    assert raw is not None
    [entry] = json.loads(raw)["snapshots"]
    assert entry["location"].endswith("/device.raw.json")
    assert entry["caller"].split("/")[0] not in reused
    ledger = json.loads(cluster.get_variable(f"clarity_quota__{PROJECT}") or "{}")
    assert [call["outcome"] for call in ledger["calls"]] == ["200"]
    assert token not in raw
