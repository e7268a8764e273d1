"""The ledger race under a real scheduler (issue 20): many slots, nothing over the limit.

The ``clarity_api`` pool gets 4 slots, as a user "going faster" would set it, and twelve
callers of one project (3 calls a day) run on two Celery workers: eight exports and four
hand-written ``@task``s calling the hook directly, half of them outside the pool. The first
four (two of each kind) wait at a barrier and reach the ledger in the same instant, so four
callers contend for three calls; the rest follow as slots free up. The
cluster names a shared ``[clarity] ledger_lock_dir`` (environment.py), so the ledger's lock
serialises every writer whatever its pool. The emulator's own limit is far above the
connection's, so it answers (and records) every call that reaches it: the test counts what
the ledger let through, not what Clarity would have refused.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Any

import pytest

from airflow_provider_clarity.testing.emulator import ClarityEmulator
from tests.integration.cluster import AirflowCluster
from tests.integration.scheduler_checks import _calls, _connect, _dt, _ledger, _task_key

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

DAG_ID = "quota_race"
CONN_ID = "clarity_quota_race"
PROJECT = "project-race"
LIMIT = 3
SLOTS = 4
EXPORTS = [f"export_{i}" for i in range(8)]
HOOK_TASKS = [f"hook_{i}" for i in range(4)]
# Time for the first tasks to be queued and their processes to start; they then wait for
# each other at this barrier (dag_run.conf["start_at"]).
BARRIER_SECONDS = 25.0
WINDOW = {"quota_window": "rolling", "rolling_window_seconds": 3600}


def _most_at_once(tis: list[dict[str, Any]]) -> int:
    """The most task instances that ran at the same moment."""
    spans = [(_dt(ti["start_date"]), _dt(ti["end_date"])) for ti in tis if ti["start_date"]]
    return max(
        (sum(1 for start, end in spans if start <= moment < end) for moment, _ in spans),
        default=0,
    )


def _asked(params: dict[str, str]) -> str:
    """Which kind of caller sent a request: the exports ask ``OS``, the hook tasks ``Device``."""
    return {"OS": "export", "Device": "hook"}.get(params.get("dimension1", ""), "other")


def test_twelve_callers_on_four_slots_spend_exactly_the_limit(
    airflow_cluster: AirflowCluster,
) -> None:
    cluster = airflow_cluster
    with ClarityEmulator(window="rolling", rolling_window_seconds=3600, daily_limit=1000) as emu:
        _connect(cluster, emu, CONN_ID, PROJECT, daily_limit=LIMIT, **WINDOW)
        cluster.delete_variable(f"clarity_quota__{PROJECT}")
        cluster.wait_for_dags([DAG_ID])
        cluster.set_pool("clarity_api", SLOTS)
        try:
            run = (
                DAG_ID,
                cluster.trigger(DAG_ID, conf={"start_at": time.time() + BARRIER_SECONDS}),
            )
            final = cluster.wait_for_runs([run], timeout=360)
        finally:
            cluster.set_pool("clarity_api", 1)
        calls = _calls(emu, PROJECT)

    tis = cluster.task_instances(*run)
    states = {ti["task_id"]: ti["state"] for ti in tis}
    ledger = _ledger(cluster, PROJECT)
    sys.stderr.write(
        f"\n[quota race] {len(calls)} calls reached Clarity "
        f"({dict(Counter(_asked(r.params) for r in calls))}); ledger {len(ledger)} entries; "
        f"at most {_most_at_once(tis)} tasks at once; states {dict(Counter(states.values()))}\n"
    )
    # The race really ran: several callers held a slot at the same time.
    assert {ti["pool"] for ti in tis if ti["task_id"] in EXPORTS} == {"clarity_api"}
    assert {ti["pool"] for ti in tis if ti["task_id"] in HOOK_TASKS} == {
        "clarity_api",
        "default_pool",
    }
    assert _most_at_once(tis) > LIMIT, f"fewer tasks than calls ran side by side: {tis}"

    # Exactly the limit reached Clarity, whoever sent it.
    assert len(calls) == LIMIT, (
        f"{len(calls)} calls reached Clarity for a limit of {LIMIT}: "
        f"{[(_asked(r.params), r.at.isoformat()) for r in calls]}"
    )
    assert [r.status for r in calls] == [200] * LIMIT

    # The ledger charged exactly those calls, to the tasks that succeeded; every other
    # caller was skipped before sending anything.
    assert final == {run: "success"}, states
    assert len(ledger) == LIMIT, ledger
    assert [entry["outcome"] for entry in ledger] == ["200"] * LIMIT
    succeeded = {f"{DAG_ID}.{task}" for task, state in states.items() if state == "success"}
    assert sorted(_task_key(entry["caller"]) for entry in ledger) == sorted(succeeded)
    assert Counter(states.values()) == {"success": LIMIT, "skipped": 12 - LIMIT}, states
    for entry, call in zip(ledger, calls, strict=True):
        assert _dt(entry["at"]) <= call.at, "a call was recorded after it reached Clarity"
