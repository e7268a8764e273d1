"""Parallel projects under a real scheduler: N projects x 1 export, one slot against many.

Starts the integration suite's Airflow (tests/integration: PostgreSQL, CeleryExecutor with
two workers on this machine, scheduler, dag-processor, triggerer, api-server), with a
shared ``[clarity] ledger_lock_dir`` and as many worker slots as the parallel pool has. A
Clarity emulator on 127.0.0.1 answers every call after ``--latency`` seconds. The DAG
``benchmarks/dags/clarity_n_projects.py`` (one export per project, each its own connection)
runs twice in the same cluster: first with the ``clarity_api`` pool at ``--slots`` slots
(the ledger lock keeps each project's count), then at 1 slot (the old rule); the second run
meets warm workers, so the comparison favours the one slot if anything.

Prints the figures and writes them to the "Parallel projects" section of
``benchmarks/results.md`` (``--no-write`` leaves it alone). Needs PostgreSQL and Redis
(``make services``). Nothing here is a test.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:  # the harness lives in tests/integration
    sys.path.insert(0, str(REPO))

from sections import PARALLEL_PROJECTS, RESULTS  # noqa: E402

if TYPE_CHECKING:
    from tests.integration.cluster import AirflowCluster

DAG_FILE = HERE / "dags" / "clarity_n_projects.py"
DAG_ID = "parallel_projects"
UNLIMITED = 1_000_000
PREDICT_FOR = 1000


@dataclass
class Phase:
    """One run of the DAG: the pool's slots and what it took."""

    slots: int
    wall: float  # seconds from the trigger to the run's end, as the client saw it
    holds: list[float]  # each export's start-to-end (the time it held its slot)
    most_at_once: int
    states: dict[str, int]
    calls: int  # calls Clarity received during the run
    ledgers_ok: bool  # every project's ledger holds exactly the calls Clarity received
    cpu: float  # CPU seconds the Airflow components, workers and tasks used during the run

    @property
    def exports(self) -> int:
        return max(1, sum(self.states.values()))

    @property
    def per_export(self) -> float:
        """Wall seconds per export: the throughput the slots gave."""
        return self.wall / self.exports

    @property
    def cpu_per_export(self) -> float:
        return self.cpu / self.exports


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _most_at_once(spans: list[tuple[datetime, datetime]]) -> int:
    return max(
        (sum(1 for start, end in spans if start <= moment < end) for moment, _ in spans),
        default=0,
    )


def _cluster_cpu(cluster: AirflowCluster) -> float:
    """CPU seconds used so far by the cluster's processes and every descendant they reaped.

    Read between runs, when no task process is alive, so no process is counted twice (once
    itself, once in its parent's ``children_*`` times). PostgreSQL and Redis are not included.
    """
    import psutil

    total = 0.0
    for proc in cluster.processes.values():
        try:
            root = psutil.Process(proc.pid)
            family = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for member in family:
            try:
                times = member.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system + times.children_user + times.children_system
    return total


def _progress(message: str) -> None:
    sys.stderr.write(f"[parallel projects {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def run_phase(cluster: AirflowCluster, emulator: Any, projects: int, slots: int) -> Phase:
    """Set the pool to ``slots``, run the DAG once and measure it."""
    import json

    cluster.set_pool("clarity_api", slots)
    before = len(emulator.requests)
    cpu_before = _cluster_cpu(cluster)
    _progress(f"{projects} exports with the clarity_api pool at {slots} slot(s)")
    started = time.monotonic()
    run = (DAG_ID, cluster.trigger(DAG_ID))
    final = cluster.wait_for_runs([run], timeout=60 + projects * 40, interval=0.5)
    wall = time.monotonic() - started
    cpu = _cluster_cpu(cluster) - cpu_before
    tis = cluster.task_instances(*run)
    spans = [(_dt(ti["start_date"]), _dt(ti["end_date"])) for ti in tis if ti["end_date"]]
    states: dict[str, int] = {}
    for ti in tis:
        states[str(ti["state"])] = states.get(str(ti["state"]), 0) + 1
    if final != {run: "success"}:
        raise SystemExit(f"the run did not succeed: {states}\n{cluster.failed_task_logs()}")
    requests = emulator.requests
    ledgers_ok = True
    for index in range(projects):
        raw = cluster.get_variable(f"clarity_quota__bench-p{index}")
        charged = len(json.loads(raw)["calls"]) if raw else 0
        received = sum(1 for r in requests if r.project == f"bench-p{index}")
        ledgers_ok &= charged == received
    phase = Phase(
        slots=slots,
        wall=wall,
        holds=[(end - start).total_seconds() for start, end in spans],
        most_at_once=_most_at_once(spans),
        states=states,
        calls=len(requests) - before,
        ledgers_ok=ledgers_ok,
        cpu=cpu,
    )
    _progress(
        f"{slots} slot(s): {wall:.1f} s, {cpu:.0f} CPU s, {phase.calls} calls, at most "
        f"{phase.most_at_once} at once, states {states}"
    )
    return phase


def measure(projects: int, latency: float, slots: int) -> tuple[Phase, Phase, dict[str, str]]:
    """Start the cluster, run the parallel phase then the 1-slot phase, stop everything."""
    # Imported here: importing this module stays cheap.
    from airflow_provider_clarity.testing.emulator import ClarityEmulator
    from tests.integration.cluster import _start_cluster
    from tests.integration.services import Postgres, Redis, missing_services

    why = missing_services()
    if why:
        raise SystemExit(f"Cannot run the parallel-projects benchmark: {why}. Run `make services`.")
    per_worker = max(1, (slots + 1) // 2)
    info: dict[str, str] = {"load_start": " ".join(f"{x:.2f}" for x in os.getloadavg())}
    with ClarityEmulator(daily_limit=UNLIMITED) as emulator:
        emulator.inject_fault("slow", delay=latency, permanent=True)
        overrides = {
            "CLARITY_BENCH_PROJECTS": str(projects),
            "AIRFLOW__CORE__PARALLELISM": str(2 * per_worker),
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(projects),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(per_worker),
        }
        for index in range(projects):
            project = f"bench-p{index}"
            overrides[f"AIRFLOW_CONN_CLARITY_P{index}"] = emulator.airflow_conn_json(
                emulator.issue_token(project), project_id=project
            )
        root = Path(tempfile.mkdtemp(prefix="clarity-bench-parallel-"))
        dag_sources = root / "dag-sources"
        dag_sources.mkdir()
        shutil.copy(DAG_FILE, dag_sources / DAG_FILE.name)
        postgres = Postgres.start()
        redis: Redis | None = None
        cluster: AirflowCluster | None = None
        try:
            redis = Redis.start()
            _progress("starting Airflow (PostgreSQL, Celery, two workers)")
            cluster = _start_cluster(
                root / "home",
                postgres,
                redis,
                dag_sources=dag_sources,
                env_overrides=overrides,
                worker_concurrency=per_worker,
            )
            _progress(f"Airflow ready in {cluster.startup_seconds:.0f} s")
            cluster.wait_for_dags([DAG_ID], timeout=300)
            parallel = run_phase(cluster, emulator, projects, slots)
            serial = run_phase(cluster, emulator, projects, 1)
        finally:
            if cluster is not None:
                cluster.stop()
            if redis is not None:
                redis.stop()
            postgres.stop()
            shutil.rmtree(root, ignore_errors=True)
    info["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    info["worker_slots"] = f"2 Celery workers x {per_worker}"
    return parallel, serial, info


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} s [{min(values):.1f}-{max(values):.1f}]"


def report(
    projects: int, latency: float, parallel: Phase, serial: Phase, info: dict[str, str]
) -> list[str]:
    """The results section: figures, the ratio, and the 1,000-project prediction."""
    ratio = serial.wall / parallel.wall
    cores = len(os.sched_getaffinity(0))
    rows = [
        "| Pool `clarity_api` | Wall time, trigger to all done | Per export (wall / N) "
        "| Task run time per export, median [min-max] | Most at once | CPU per export "
        "| Calls to Clarity | Ledgers = calls |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for phase, name in (
        (serial, "1 slot"),
        (parallel, f"{parallel.slots} slots + ledger lock"),
    ):
        rows.append(
            f"| {name} | {phase.wall:.1f} s | {phase.per_export:.2f} s | {_spread(phase.holds)} "
            f"| {phase.most_at_once} | {phase.cpu_per_export:.1f} s | {phase.calls} "
            f"| {'yes' if phase.ledgers_ok else 'NO'} |"
        )
    slots = parallel.slots
    serial_1000 = PREDICT_FOR * serial.per_export
    here_1000 = PREDICT_FOR * parallel.per_export
    slot_bound = PREDICT_FOR * serial.per_export / slots
    cpu_1000 = PREDICT_FOR * parallel.cpu_per_export
    cores_needed = parallel.cpu_per_export * slots / serial.per_export
    return [
        "## Parallel projects under a real scheduler",
        "",
        f"`{info['command']}`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {info['seconds']} s "
        f"in all, {cores} cores. {projects} projects x 1 export each (each its own "
        f"connection and project), the Clarity emulator answering every call after "
        f"{latency:g} s. The integration suite's Airflow: PostgreSQL, CeleryExecutor with "
        f"{info['worker_slots']} task slots on this machine (two simulated hosts sharing "
        "`[clarity] ledger_lock_dir`), scheduler, dag-processor, triggerer, api-server. One "
        "cluster, one run: first the pool at many slots, then at 1 slot (the workers are "
        "warm by then, which favours the 1-slot figure). Wall time is from the trigger to "
        "the run's end as the client saw it; CPU is what the Airflow processes and the task "
        "processes used during the run (PostgreSQL and Redis not included). Load average at "
        f"start {info['load_start']}, at end {info['load_end']} (other work shared the "
        "machine).",
        "",
        *rows,
        "",
        f"**Ratio: the 1-slot run took {ratio:.1f}x the wall time of the {slots}-slot run.** "
        f"With 1 slot each export holds the pool for its {latency:g} s answer plus the task's "
        "start and the scheduler's turn; with many slots the exports overlap until the "
        f"{cores} cores are busy, so each task runs longer but {parallel.most_at_once} run "
        "at once.",
        "",
        f"Prediction for {PREDICT_FOR:,} projects, from a linear model (time = N x the "
        "per-export figures above, which holds once N is well above the slots), not a "
        "measurement:",
        "",
        f"- 1 slot: {PREDICT_FOR:,} x {serial.per_export:.2f} s = "
        f"{serial_1000 / 3600:.1f} h; more cores shorten only the task's start: the one "
        "slot is the limit.",
        f"- {slots} slots on this {cores}-core machine: {PREDICT_FOR:,} x "
        f"{parallel.per_export:.2f} s = {here_1000 / 60:.0f} min. The cores are the limit "
        f"here (a task ran {statistics.median(parallel.holds):.1f} s with {slots} slots, "
        f"{statistics.median(serial.holds):.1f} s alone), and they were shared with other "
        f"work; the Airflow processes themselves need {PREDICT_FOR:,} x "
        f"{parallel.cpu_per_export:.1f} CPU s = {cpu_1000 / 60:.0f} CPU min.",
        f"- {slots} slots on workers with the CPU to keep them busy (about "
        f"{parallel.cpu_per_export:.1f} CPU s x {slots} slots / {serial.per_export:.2f} s = "
        f"{cores_needed:.0f} cores): {PREDICT_FOR:,} x {serial.per_export:.2f} s / {slots} = "
        f"{slot_bound / 60:.0f} min. The quota is per project, so it sets no bound across "
        "projects; more slots (and cores) divide the time further.",
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--projects", type=int, default=50, help="N projects (default 50)")
    parser.add_argument(
        "--latency", type=float, default=2.0, help="seconds before each answer (default 2)"
    )
    parser.add_argument(
        "--slots", type=int, default=16, help="clarity_api slots of the parallel run (16)"
    )
    parser.add_argument("--no-write", action="store_true", help="leave results.md alone")
    args = parser.parse_args(argv)
    if args.projects < 1 or args.slots < 2 or args.latency < 0:
        parser.error("--projects must be >= 1, --slots >= 2 and --latency >= 0")
    command = shlex.join(
        ["python", "benchmarks/parallel_projects.py", *(sys.argv[1:] if argv is None else argv)]
    )
    started = time.monotonic()
    parallel, serial, info = measure(args.projects, args.latency, args.slots)
    info["command"] = command
    info["seconds"] = f"{time.monotonic() - started:.0f}"
    lines = report(args.projects, args.latency, parallel, serial, info)
    print("\n".join(lines))
    if not args.no_write:
        PARALLEL_PROJECTS.write(lines)
        print(f"wrote the parallel-projects section of {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
