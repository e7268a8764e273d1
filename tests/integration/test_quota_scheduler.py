"""The daily quota under a real scheduler (issue 4, "Proof under a real scheduler").

``dag.test()`` ignores pools and runs triggers inline, so these tests run the DAGs of
tests/integration/dags on a real Airflow (see conftest.py) against a ClarityEmulator whose
quota window is shortened to seconds, and check what a user would see: task states, the
calls Clarity received, and the ledger.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_clarity.testing.emulator import ClarityEmulator
from tests.integration.cluster import AirflowCluster
from tests.integration.environment import WORKERS, wait_until
from tests.integration.scheduler_checks import (
    Observer,
    _assert_at_most_per_window,
    _assert_ledger_matches,
    _assert_token_never_written,
    _calls,
    _connect,
    _dt,
    _figures,
    _in_window,
    _ledger,
    _task_key,
)

# The first test to run also pays for starting Airflow (up to 3 min on a slow machine).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

TEAM_DAGS = ("quota_team_1", "quota_team_2", "quota_team_3")
TASKS_PER_DAG = 5
LIMIT = 10
WINDOW = timedelta(seconds=60)
RESCHED_LIMIT = 2
RESCHED_WINDOW = timedelta(seconds=20)


def test_harness_pool_serialises_and_deferred_task_frees_the_slot(
    airflow_cluster: AirflowCluster,
) -> None:
    """The harness itself: a 1-slot pool runs one task at a time; a deferred task frees it."""
    cluster = airflow_cluster
    cluster.wait_for_dags(["harness_smoke"])
    run = ("harness_smoke", cluster.trigger("harness_smoke"))
    ran_while_deferred: set[str] = set()
    observer = Observer(cluster, [run])

    def poll() -> None:
        observer.poll()
        tis = {ti["task_id"]: ti["state"] for ti in cluster.task_instances(*run)}
        if tis.get("defer") == "deferred":
            ran_while_deferred.update(
                task for task, state in tis.items() if state in ("queued", "running")
            )

    assert cluster.wait_for_runs([run], timeout=180, on_poll=poll, interval=0.5) == {run: "success"}
    tis = {ti["task_id"]: ti for ti in cluster.task_instances(*run)}
    assert {task: ti["state"] for task, ti in tis.items()} == dict.fromkeys(
        ["defer", "sleep_0", "sleep_1", "sleep_2"], "success"
    )
    assert {ti["pool"] for ti in tis.values()} == {"clarity_api"}
    sleepers = sorted((tis[f"sleep_{i}"] for i in range(3)), key=lambda ti: ti["start_date"])
    for earlier, later in itertools.pairwise(sleepers):
        assert _dt(later["start_date"]) >= _dt(earlier["end_date"]), "the 1-slot pool overlapped"
    assert observer.wake_times.get("harness_smoke.defer"), "never seen deferred on a trigger"
    assert [t["try_number"] for t in cluster.task_tries(*run, "defer")] == [1]
    log = cluster.task_log(*run, "defer")
    assert "Deferring until" in log
    assert "Resumed after the trigger fired" in log
    assert ran_while_deferred, "nothing ran while a task was deferred: it held the pool slot"


def test_fifteen_exports_share_ten_calls_and_wait_for_the_reset(
    airflow_cluster: AirflowCluster,
) -> None:
    """3 DAGs x 5 exports on one project with 10 calls per 60 s, plus one on another project."""
    cluster = airflow_cluster
    with ClarityEmulator(window="rolling", rolling_window_seconds=60, daily_limit=LIMIT) as emu:
        window = {"quota_window": "rolling", "rolling_window_seconds": 60}
        tokens = [
            _connect(cluster, emu, "clarity_default", "project-a", **window),
            _connect(cluster, emu, "clarity_other", "project-b", **window),
        ]
        dag_ids = (*TEAM_DAGS, "quota_other_project")
        cluster.wait_for_dags(dag_ids)
        runs = [(dag_id, cluster.trigger(dag_id)) for dag_id in dag_ids]
        observer = Observer(cluster, runs, watch_page="project-a")
        final = cluster.wait_for_runs(runs, timeout=420, on_poll=observer.poll)

        assert final == dict.fromkeys(runs, "success"), observer.states
        calls_a = _calls(emu, "project-a")
        calls_b = _calls(emu, "project-b")
    _figures("15 exports, deferrable", cluster, calls_a, WINDOW, observer.states, TEAM_DAGS)

    # Clarity saw all 15 wanted calls, never more than 10 in a window, and never said 429.
    assert [r.status for r in calls_a] == [200] * 15
    assert all(r.counted for r in calls_a)
    _assert_at_most_per_window(calls_a, LIMIT, WINDOW)

    # Every export ended in success; exactly five had to wait, deferred to the triggerer.
    team_tasks = {f"{dag_id}.export_{i}" for dag_id in TEAM_DAGS for i in range(TASKS_PER_DAG)}
    ended = {k: v for k, v in observer.states.items() if k in team_tasks}
    assert set(ended) == team_tasks
    waited = observer.ever("deferred") & team_tasks
    assert len(waited) == 15 - LIMIT, observer.states
    assert not observer.ever("up_for_reschedule"), "a deferrable export was rescheduled"
    assert observer.slot_free_while_deferred, "deferred exports held the clarity_api slot"
    # The quota page (the api-server, on PostgreSQL) listed the waiting exports as calls
    # still to come, and only those that were really waiting.
    page_deferred = observer.page_pending.get("deferred", set())
    assert page_deferred and page_deferred <= waited, observer.page_pending

    # Each wait ended when Clarity had a call free again, not before (and not much later).
    for key in waited:
        assert observer.wake_times.get(key), f"{key} was deferred without a DateTimeTrigger"
        for wake in observer.wake_times[key]:
            assert _in_window(calls_a, wake, WINDOW) < LIMIT, f"{key} woke before the reset"
            assert wake - calls_a[0].at < 3 * WINDOW, f"{key} waited far past the reset"

    # Waiting cost no retry, and the task log says why the task waited.
    run_of = dict(runs)
    for key in team_tasks:
        dag_id, task_id = key.split(".")
        tries = cluster.task_tries(dag_id, run_of[dag_id], task_id)
        assert [t["try_number"] for t in tries] == [1], f"{key}: {tries}"
    for key in waited:
        dag_id, task_id = key.split(".")
        assert "No Clarity call left" in cluster.task_log(dag_id, run_of[dag_id], task_id)

    # The ledger recorded exactly Clarity's calls, in order: the first ten by the exports
    # that never waited, the last five by the ones that did, each after its wait.
    ledger_a = _ledger(cluster, "project-a")
    _assert_ledger_matches(ledger_a, calls_a)
    callers = [_task_key(entry["caller"]) for entry in ledger_a]
    assert sorted(callers) == sorted(team_tasks)
    assert set(callers[:LIMIT]) == team_tasks - waited
    assert set(callers[LIMIT:]) == waited
    for key, call in zip(callers, calls_a, strict=True):
        if key in waited:
            assert call.at >= min(observer.wake_times[key]), f"{key} called before its wake time"

    # The documented command shows the same calls, by caller.
    usage = subprocess.run(
        [sys.executable, "-m", "airflow_provider_clarity.quota", "usage", "clarity_default"],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    for entry in ledger_a:
        assert entry["caller"] in usage

    # The other project was unaffected: its one call went out at once and is only in its
    # own ledger.
    assert [r.status for r in calls_b] == [200]
    assert observer.states["quota_other_project.export_0"] <= {
        "scheduled",
        "queued",
        "running",
        "success",
        "None",
    }
    ledger_b = _ledger(cluster, "project-b")
    _assert_ledger_matches(ledger_b, calls_b)
    assert [_task_key(e["caller"]) for e in ledger_b] == ["quota_other_project.export_0"]

    _assert_token_never_written(cluster, tokens)


def test_non_deferrable_export_waits_by_rescheduling(airflow_cluster: AirflowCluster) -> None:
    """deferrable=False: the export waits in up_for_reschedule, not in the triggerer."""
    cluster = airflow_cluster
    with ClarityEmulator(window="rolling", rolling_window_seconds=20, daily_limit=LIMIT) as emu:
        emu.configure_project("project-c", daily_limit=RESCHED_LIMIT)
        token = _connect(
            cluster,
            emu,
            "clarity_resched",
            "project-c",
            daily_limit=RESCHED_LIMIT,
            quota_window="rolling",
            rolling_window_seconds=20,
        )
        cluster.wait_for_dags(["quota_reschedule"])
        run = ("quota_reschedule", cluster.trigger("quota_reschedule"))
        observer = Observer(cluster, [run])
        final = cluster.wait_for_runs([run], timeout=240, on_poll=observer.poll)

        assert final == {run: "success"}, observer.states
        calls = _calls(emu, "project-c")
    _figures("3 exports, reschedule", cluster, calls, RESCHED_WINDOW, observer.states, [run[0]])

    assert [r.status for r in calls] == [200] * 3
    _assert_at_most_per_window(calls, RESCHED_LIMIT, RESCHED_WINDOW)
    waited = observer.ever("up_for_reschedule")
    assert len(waited) == 1, observer.states
    assert not observer.ever("deferred")
    (key,) = waited
    dates = observer.reschedule_dates[key]
    assert dates, "no reschedule request recorded"
    for when in dates:
        assert _in_window(calls, when, RESCHED_WINDOW) < RESCHED_LIMIT, "woke before the reset"
    dag_id, task_id = key.split(".")
    tries = cluster.task_tries(dag_id, run[1], task_id)
    assert [t["try_number"] for t in tries] == [1], f"waiting cost a retry: {tries}"
    assert "No Clarity call left" in cluster.task_log(dag_id, run[1], task_id)
    ledger = _ledger(cluster, "project-c")
    _assert_ledger_matches(ledger, calls)
    assert _task_key(ledger[-1]["caller"]) == key
    assert calls[-1].at >= min(dates)
    _assert_token_never_written(cluster, [token])


# --------------------------------------------------------------------------- Celery workers


def _worker_of(cluster: AirflowCluster, hostname: str | None) -> str:
    by_host = {cluster.worker_host(worker): worker for worker in WORKERS}
    assert hostname in by_host, f"task ran on {hostname!r}, not on a known worker"
    return by_host[hostname]


def _xcom(cluster: AirflowCluster, dag_id: str, run_id: str, task_id: str) -> Any:
    entry = cluster.api(
        "GET",
        f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value",
        params={"deserialize": "true"},
    )
    return entry["value"]


def test_retry_on_the_other_worker_reuses_the_kept_snapshot(
    airflow_cluster: AirflowCluster, tmp_path: Path
) -> None:
    """Try 1 keeps Clarity's answer, then fails to write; try 2, on the other worker, calls nobody.

    The fault is real: while Clarity's (slow) answer is in flight, a folder appears where the
    output file goes, so the atomic rename fails after the raw snapshot was kept beside it.
    (A folder there before the call is refused by the operator's pre-call check and costs
    nothing, so it has to appear during the call.) The test stops the worker of try 1 once it
    has failed, so the retry must land on the other one, and removes the folder.
    """
    cluster = airflow_cluster
    destination = tmp_path / "out" / "os.json"
    destination.parent.mkdir(parents=True)
    stopped: str | None = None
    with ClarityEmulator(window="rolling", rolling_window_seconds=3600, daily_limit=LIMIT) as emu:
        emu.inject_fault("slow", count=1, delay=15)
        token = _connect(
            cluster,
            emu,
            "clarity_retry",
            "project-r",
            quota_window="rolling",
            rolling_window_seconds=3600,
        )
        cluster.wait_for_dags(["retry_elsewhere"])
        run = (
            "retry_elsewhere",
            cluster.trigger("retry_elsewhere", conf={"destination": f"file://{destination}"}),
        )
        try:
            wait_until(lambda: emu.in_flight > 0 or None, timeout=240, message="the first call")
            (destination / "occupied").mkdir(parents=True)
            wait_until(
                lambda: (
                    cluster.task_states([run]).get("retry_elsewhere.export")
                    in ("up_for_retry", "failed")
                ),
                timeout=240,
                message=lambda: f"the first try to fail: {cluster.task_states([run])}",
            )
            (first,) = cluster.task_tries(*run, "export")[:1]
            stopped = _worker_of(cluster, first["hostname"])
            cluster.stop_worker(stopped)
            (destination / "occupied").rmdir()
            destination.rmdir()
            final = cluster.wait_for_runs([run], timeout=240)
        finally:
            if stopped is not None:
                cluster.start_workers(stopped)
        calls = _calls(emu, "project-r")

    _figures(
        "retry elsewhere", cluster, calls, timedelta(hours=1), cluster.task_states([run]), [run[0]]
    )
    assert final == {run: "success"}, cluster.task_states([run])
    tries = cluster.task_tries(*run, "export")
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success")]
    assert tries[0]["hostname"] != tries[1]["hostname"], "both tries ran on one worker"
    assert {_worker_of(cluster, t["hostname"]) for t in tries} == set(WORKERS)
    # One call in all: the retry reused the snapshot the first try kept.
    assert [r.status for r in calls] == [200]
    assert "Could not write" in cluster.task_log(*run, "export", 1)
    retry_log = cluster.task_log(*run, "export", 2)
    assert "Reusing the raw snapshot" in retry_log
    assert "recorded call" not in retry_log
    ledger = _ledger(cluster, "project-r")
    _assert_ledger_matches(ledger, calls)
    assert (destination.parent / "os.raw.json").is_file()
    rows = json.loads(destination.read_text())
    assert rows and {row["metric"] for row in rows} >= {"Traffic"}
    assert _xcom(cluster, *run, "export")["rows"] == len(rows)
    _assert_token_never_written(cluster, [token])


def test_worker_killed_mid_call_keeps_the_call_counted(airflow_cluster: AirflowCluster) -> None:
    """SIGKILL the worker while Clarity is still answering: the call stays spent, nothing is lost.

    Quota 2. ``export``'s first try is killed with its call in flight (a ``slow`` answer); the
    scheduler notices the missing heartbeat and retries it on the other worker, which spends
    the second call. ``after`` then finds none left and skips: had the killed call been
    forgotten, it would have called and met Clarity's 429.
    """
    cluster = airflow_cluster
    limit = 2
    killed: str | None = None
    window = {"quota_window": "rolling", "rolling_window_seconds": 3600}
    with ClarityEmulator(window="rolling", rolling_window_seconds=3600, daily_limit=limit) as emu:
        token = _connect(cluster, emu, "clarity_killed", "project-k", daily_limit=limit, **window)
        emu.inject_fault("slow", delay=20)
        cluster.wait_for_dags(["worker_killed"])
        run = ("worker_killed", cluster.trigger("worker_killed"))
        try:
            wait_until(
                lambda: emu.in_flight >= 1,
                timeout=240,
                interval=0.2,
                message=lambda: f"the call to be in flight: {cluster.task_states([run])}",
            )
            (ti,) = [t for t in cluster.task_instances(*run) if t["task_id"] == "export"]
            killed = _worker_of(cluster, ti["hostname"])
            cluster.kill_worker(killed)
            final = cluster.wait_for_runs([run], timeout=300)
        finally:
            if killed is not None:
                cluster.start_workers(killed)
        wait_until(lambda: emu.in_flight == 0, timeout=60, message="the slow answer to end")
        calls = _calls(emu, "project-k")

    states = cluster.task_states([run])
    _figures("worker killed", cluster, calls, timedelta(hours=1), states, [run[0]])
    assert final == {run: "success"}, states
    assert states == {"worker_killed.export": "success", "worker_killed.after": "skipped"}
    tries = cluster.task_tries(*run, "export")
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success")]
    assert _worker_of(cluster, tries[0]["hostname"]) == killed
    assert _worker_of(cluster, tries[1]["hostname"]) != killed
    # Clarity counted both calls (the killed one too: it answered a client that was gone),
    # and never said 429.
    assert [(r.status, r.counted) for r in calls] == [(200, True), (200, True)]
    # The ledger kept the killed call, pending forever, and the retry's.
    ledger = _ledger(cluster, "project-k")
    assert [e["outcome"] for e in ledger] == ["pending", "200"]
    assert {_task_key(e["caller"]) for e in ledger} == {"worker_killed.export"}
    # ``after`` skipped without a call: the ledger's only entries are ``export``'s (above).
    rows = _xcom(cluster, *run, "export")
    assert rows and {row["metric"] for row in rows} >= {"Traffic"}
    _assert_token_never_written(cluster, [token])
