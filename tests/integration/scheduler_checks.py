"""Checks shared by the scheduler tests: calls per window, the ledger, tokens never written."""

from __future__ import annotations

import itertools
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from airflow_provider_clarity.testing.emulator import ClarityEmulator, RecordedRequest
from tests.integration.cluster import AirflowCluster


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
    watch_page: str | None = None  # a project id: read its quota page's pending calls
    # "dag.task" the quota page listed as a pending call, by the state it gave.
    page_pending: dict[str, set[str]] = field(default_factory=dict)

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
        if deferred and self.watch_page:
            projects = self.cluster.quota_page_json()["projects"]
            scheduled = next(p for p in projects if p["project_id"] == self.watch_page)[
                "scheduled_today"
            ]
            for pending in scheduled["pending"]:
                key = f"{pending['dag_id']}.{pending['task_id']}"
                self.page_pending.setdefault(pending["state"], set()).add(key)

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
    """No token in any file of the cluster (logs, PostgreSQL's data and WAL) nor in a dump."""
    for root in (cluster.home, cluster.postgres.root):
        for path in root.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                leaked = [i for i, token in enumerate(tokens) if token.encode() in data]
                assert not leaked, f"a Clarity token appears in {path}"
    dump = cluster.postgres.dump()
    assert b"clarity_quota__" in dump, "the dump does not hold the ledger: not the metadata DB"
    for token in tokens:
        assert token.encode() not in dump, "a Clarity token appears in the metadata DB dump"


def _figures(
    name: str,
    cluster: AirflowCluster,
    calls: Sequence[RecordedRequest],
    window: timedelta,
    states: dict[str, set[str]] | dict[str, str | None],
    dag_ids: Sequence[str],
) -> None:
    """One line of figures for the run notes (stderr, shown with ``-s``); never asserted."""
    busiest = max((_in_window(calls, r.at, window) for r in calls), default=0)
    seen = Counter(
        state
        for found in states.values()
        for state in (found if isinstance(found, set) else {found})
    )
    delays = [d for dag_id in dag_ids for d in cluster.executor_event_delays(dag_id)]
    lag = f"{min(delays):.2f}-{max(delays):.2f} s over {len(delays)}" if delays else "none"
    sys.stderr.write(
        f"\n[figures] {name}: {len(calls)} calls, at most {busiest} in any {window}, "
        f"{sum(r.status == 429 for r in calls)} x 429; task states seen {dict(seen)}; "
        f"executor event delays {lag}\n"
    )
