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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from airflow_provider_clarity.testing.emulator import ClarityEmulator, RecordedRequest
from tests.integration.conftest import AirflowCluster

# The first test to run also pays for starting Airflow (up to 3 min on a slow machine).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

TEAM_DAGS = ("quota_team_1", "quota_team_2", "quota_team_3")
TASKS_PER_DAG = 5
LIMIT = 10
WINDOW = timedelta(seconds=60)
RESCHED_LIMIT = 2
RESCHED_WINDOW = timedelta(seconds=20)


def _dt(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value)


@dataclass
class Observer:
    """Polls task states, trigger wake times, reschedules and the pool while runs go on."""

    cluster: AirflowCluster
    runs: Sequence[tuple[str, str]]
    states: dict[str, set[str]] = field(default_factory=dict)
    wake_times: dict[str, set[datetime]] = field(default_factory=dict)
    reschedule_dates: dict[str, list[datetime]] = field(default_factory=dict)
    slot_free_while_deferred: bool = False

    def poll(self) -> None:
        deferred = 0
        for dag_id, run_id in self.runs:
            for ti in self.cluster.task_instances(dag_id, run_id):
                self.states.setdefault(f"{dag_id}.{ti['task_id']}", set()).add(str(ti["state"]))
                deferred += ti["state"] == "deferred"
        for (dag_id, _, task_id), moment in self.cluster.deferred_until().items():
            self.wake_times.setdefault(f"{dag_id}.{task_id}", set()).add(moment)
        for (dag_id, _, task_id), dates in self.cluster.reschedules().items():
            self.reschedule_dates[f"{dag_id}.{task_id}"] = dates
        if deferred:
            pool = self.cluster.api("GET", "/pools/clarity_api")
            if pool["deferred_slots"] >= 1 and pool["open_slots"] == pool["slots"]:
                self.slot_free_while_deferred = True

    def ever(self, state: str) -> set[str]:
        return {key for key, seen in self.states.items() if state in seen}


def _connect(
    cluster: AirflowCluster,
    emulator: ClarityEmulator,
    conn_id: str,
    project: str,
    **extra: Any,
) -> str:
    """Point ``conn_id`` at the emulator for ``project``; return the token it uses."""
    token = emulator.issue_token(project)
    spec = json.loads(emulator.airflow_conn_json(token, project, **extra))
    cluster.set_connection(
        conn_id,
        conn_type=spec["conn_type"],
        host=spec["host"],
        password=spec["password"],
        extra=spec["extra"],
    )
    return token


def _calls(emulator: ClarityEmulator, project: str) -> list[RecordedRequest]:
    return sorted((r for r in emulator.requests if r.project == project), key=lambda r: r.at)


def _in_window(calls: Sequence[RecordedRequest], moment: datetime, window: timedelta) -> int:
    """Calls Clarity (the emulator) counts against the quota at ``moment``."""
    return sum(1 for r in calls if r.counted and moment - window < r.at <= moment)


def _ledger(cluster: AirflowCluster, project: str) -> list[dict[str, Any]]:
    raw = cluster.get_variable(f"clarity_quota__{project}")
    assert raw is not None, f"no quota ledger Variable for {project}"
    calls: list[dict[str, Any]] = json.loads(raw)["calls"]
    return sorted(calls, key=lambda entry: entry["at"])


def _task_key(caller: str) -> str:
    dag_id, task_id, _run_id, _map_index = caller.split("/")
    return f"{dag_id}.{task_id}"


def _assert_at_most_per_window(
    calls: Sequence[RecordedRequest], limit: int, window: timedelta
) -> None:
    times = [r.at for r in calls if r.counted]
    for first, later in zip(times, times[limit:], strict=False):
        assert later - first >= window, (
            f"{limit + 1} calls within {window}: {first.isoformat()} .. {later.isoformat()}"
        )


def _assert_ledger_matches(
    ledger: Sequence[dict[str, Any]], calls: Sequence[RecordedRequest]
) -> None:
    """The ledger has one entry per call Clarity received, written before the call was sent."""
    assert [entry["outcome"] for entry in ledger] == [str(r.status) for r in calls]
    for entry, call in zip(ledger, calls, strict=True):
        assert _dt(entry["at"]) <= call.at, "a call was recorded after it reached Clarity"
    spans = [(_dt(e["at"]), _dt(e["done_at"])) for e in ledger]
    for (_, done), (start, _) in itertools.pairwise(spans):
        assert start >= done, "two ledger updates overlapped: the pool did not serialise them"


def _assert_token_never_written(cluster: AirflowCluster, tokens: Sequence[str]) -> None:
    for path in cluster.home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            leaked = [i for i, token in enumerate(tokens) if token.encode() in data]
            assert not leaked, f"a Clarity token appears in {path.relative_to(cluster.home)}"


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
        observer = Observer(cluster, runs)
        final = cluster.wait_for_runs(runs, timeout=420, on_poll=observer.poll)

        assert final == dict.fromkeys(runs, "success"), observer.states
        calls_a = _calls(emu, "project-a")
        calls_b = _calls(emu, "project-b")

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
