"""AirflowCluster: a real Airflow's components, started, driven by CLI and REST API, stopped."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from tests.integration.environment import (
    _EXECUTOR_EVENT,
    _WORKLOAD_DONE,
    _WORKLOAD_TI,
    AIRFLOW_BIN,
    DAG_SOURCES,
    STARTUP_TIMEOUT,
    TERMINAL_RUN_STATES,
    WORKER_CONCURRENCY,
    WORKERS,
    _base_env,
    _decode_moment,
    _lines,
    _log_time,
    _tail,
    wait_until,
)
from tests.integration.services import Postgres, Redis, free_port


@dataclass
class AirflowCluster:
    """Handles on a running Airflow and the REST/DB helpers the integration tests need."""

    home: Path
    env: dict[str, str] = field(repr=False)
    port: int
    postgres: Postgres
    redis: Redis
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)
    startup_seconds: float = 0.0
    worker_concurrency: int = WORKER_CONCURRENCY
    timings: dict[str, float] = field(default_factory=dict)
    _token: str | None = field(default=None, repr=False)
    _session: requests.Session = field(default_factory=requests.Session, repr=False)

    # -- paths ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dags_folder(self) -> Path:
        return self.home / "dags"

    def log_path(self, component: str) -> Path:
        return self.home / f"{component}.log"

    # -- processes -----------------------------------------------------------------------
    def cli(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """Run ``airflow ARGS`` against this cluster and fail the test on a non-zero exit."""
        proc = subprocess.run(
            [str(AIRFLOW_BIN), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            pytest.fail(
                f"`airflow {' '.join(args)}` exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
            )
        return proc

    def start(self, component: str, *args: str, command: Sequence[str] = ()) -> None:
        """Start ``airflow COMMAND ARGS`` in the background (``COMMAND``: ``component``)."""
        log = self.log_path(component).open("ab")
        env = dict(self.env)
        if component in WORKERS:
            env["CLARITY_IT_HOST"] = self.worker_host(component)
        self.processes[component] = subprocess.Popen(
            [str(AIRFLOW_BIN), *(command or [component]), *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.home,
        )
        log.close()

    @staticmethod
    def worker_host(worker: str) -> str:
        """The host name ``worker`` records in ``task_instance.hostname``."""
        return f"clarity-it-{worker}"

    def start_workers(self, *workers: str) -> None:
        """Start Celery workers (in parallel) and wait until each is ready to take tasks."""
        offsets = {
            worker: self.log_path(worker).stat().st_size if self.log_path(worker).exists() else 0
            for worker in workers
        }
        for worker in workers:
            self.start(
                worker,
                "--celery-hostname",
                f"{worker}@%h",
                "--concurrency",
                str(self.worker_concurrency),
                "--skip-serve-logs",
                "--without-mingle",
                "--without-gossip",
                command=("celery", "worker"),
            )

        def ready(worker: str) -> bool:
            if self.processes[worker].poll() is not None:
                pytest.fail(
                    f"Celery {worker} exited at startup\n{_tail(self.log_path(worker), 60)}"
                )
            with self.log_path(worker).open("rb") as log:
                log.seek(offsets[worker])
                return b" ready." in log.read()

        for worker in workers:
            wait_until(
                functools.partial(ready, worker),
                timeout=STARTUP_TIMEOUT,
                interval=0.5,
                message=lambda worker=worker: (
                    f"Celery {worker} to come up\n{_tail(self.log_path(worker), 40)}"
                ),
            )

    def kill_worker(self, worker: str) -> None:
        """SIGKILL a Celery worker and every process under it, as a lost machine would."""
        proc = self.processes.pop(worker)
        family: list[psutil.Process] = []
        with contextlib.suppress(psutil.NoSuchProcess):
            family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        for member in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.kill()
        psutil.wait_procs(family, timeout=10)
        proc.wait(timeout=10)

    def stop_worker(self, worker: str) -> None:
        """Stop a Celery worker cleanly (SIGTERM: a warm shutdown, as a deployment would)."""
        proc = self.processes[worker]
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill_worker(worker)
        else:
            self.processes.pop(worker)

    def dead_components(self) -> list[str]:
        return [name for name, proc in self.processes.items() if proc.poll() is not None]

    def log_tails(self, lines: int = 40) -> str:
        parts = [
            f"----- {name} (pid {proc.pid}, exit {proc.poll()}) -----\n"
            f"{_tail(self.log_path(name), lines)}"
            for name, proc in self.processes.items()
        ]
        return "\n".join(parts)

    def stop(self) -> None:
        """Terminate every process the cluster started, task workers included.

        Task processes put themselves in their own process group, so the components'
        descendants are collected first and signalled one by one as well as by group.
        """
        family: list[psutil.Process] = []
        for proc in self.processes.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                family.extend(psutil.Process(proc.pid).children(recursive=True))
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for proc in self.processes.values():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
            for child in family:
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.send_signal(sig)
            deadline = time.monotonic() + 5
            for proc in self.processes.values():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            _, alive = psutil.wait_procs(family, timeout=max(0.1, deadline - time.monotonic()))
            if not alive and all(proc.poll() is not None for proc in self.processes.values()):
                return

    def failed_task_logs(self, lines: int = 60) -> str:
        """Log tails of every failed task instance, read from the DB and the log folder."""
        rows = self.query(
            "SELECT dag_id, run_id, task_id, try_number FROM task_instance WHERE state = 'failed'"
        )
        parts = []
        for row in rows:
            logs = sorted(
                (self.home / "logs").glob(
                    f"dag_id={row['dag_id']}/run_id={row['run_id']}/task_id={row['task_id']}/*"
                )
            )
            text = "\n".join(_tail(path, lines) for path in logs) or "<no log file>"
            parts.append(f"----- failed task {row['dag_id']}.{row['task_id']} -----\n{text}")
        return "\n".join(parts)

    def executor_event_delays(self, dag_id: str) -> list[float]:
        """Seconds from each task exit of ``dag_id`` (the worker's "Workload finished") to the
        scheduler's "Received executor event" for it: the lag behind the 3.3.2 wait race."""
        ti_of: dict[str, tuple[str, str]] = {}
        finished: list[tuple[datetime, tuple[str, str] | str]] = []
        for worker in WORKERS:
            for line in _lines(self.log_path(worker)):
                found = _WORKLOAD_TI.search(line)
                if found:
                    ti_of[found.group(1)] = (found.group(3), found.group(2))
                done = _WORKLOAD_DONE.search(line)
                if done and (moment := _log_time(line)):
                    finished.append((moment, done.group(1)))
        received: dict[tuple[str, str], list[datetime]] = {}
        for line in _lines(self.log_path("scheduler")):
            event = _EXECUTOR_EVENT.search(line)
            if event and (moment := _log_time(line)):
                received.setdefault((event.group(1), event.group(2)), []).append(moment)
        delays = []
        for moment, ti_id in sorted(finished, key=lambda item: item[0]):
            key = ti_of.get(str(ti_id))
            if key is None or key[0] != dag_id:
                continue
            later = [r for r in received.get(key, []) if r >= moment]
            if later:
                delays.append((later[0] - moment).total_seconds())
                received[key].remove(later[0])
        return delays

    # -- REST ----------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        if self._token is None:
            # all-admins mode hands out an admin token without credentials.
            resp = self._session.get(f"{self.base_url}/auth/token", timeout=30)
            resp.raise_for_status()
            self._token = resp.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def api(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        ok: Iterable[int] = (200, 201, 204),
        secret: str | None = None,
    ) -> Any:
        """Call the public REST API (``path`` under ``/api/v2``) and return the JSON body.

        ``secret`` is blanked out of the error text (validation errors echo their input).
        """
        resp = self._session.request(
            method,
            f"{self.base_url}/api/v2{path}",
            json=json_body,
            params=params,
            headers=self._headers(),
            timeout=30,
        )
        if resp.status_code not in set(ok):
            text = resp.text if not secret else resp.text.replace(secret, "***")
            pytest.fail(f"{method} {path} -> {resp.status_code}: {text[:2000]}")
        if not resp.content:
            return None
        return resp.json()

    def quota_page_json(self) -> dict[str, Any]:
        """The provider's quota endpoint (``/clarity-quota/api/projects``) as the admin sees it."""
        resp = self._session.get(
            f"{self.base_url}/clarity-quota/api/projects", headers=self._headers(), timeout=30
        )
        resp.raise_for_status()
        return resp.json()

    def healthy(self) -> bool:
        try:
            resp = self._session.get(f"{self.base_url}/api/v2/monitor/health", timeout=5)
        except requests.RequestException:
            return False
        if resp.status_code != 200:
            return False
        health = resp.json()
        return all(
            health.get(part, {}).get("status") == "healthy"
            for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
        )

    def set_pool(self, name: str, slots: int, *, include_deferred: bool = False) -> None:
        body = {
            "name": name,
            "slots": slots,
            "description": "integration test pool",
            "include_deferred": include_deferred,
        }
        existing = self.api("GET", f"/pools/{name}", ok=(200, 404))
        if existing is not None and existing.get("name") == name:
            self.api("PATCH", f"/pools/{name}", json_body=body)
        else:
            self.api("POST", "/pools", json_body=body)

    def set_connection(
        self,
        conn_id: str,
        *,
        conn_type: str,
        host: str | None = None,
        password: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        body = {
            "connection_id": conn_id,
            "conn_type": conn_type,
            "host": host,
            "password": password,
            "extra": json.dumps(extra) if extra is not None else None,
        }
        self.api("DELETE", f"/connections/{conn_id}", ok=(204, 404))
        self.api("POST", "/connections", json_body=body, secret=password)

    def get_variable(self, key: str) -> str | None:
        """A Variable's raw value, or None when it does not exist."""
        body = self.api("GET", f"/variables/{key}", ok=(200, 404))
        if body is None or "value" not in body:
            return None
        value: str = body["value"]
        return value

    def delete_variable(self, key: str) -> None:
        self.api("DELETE", f"/variables/{key}", ok=(204, 404))

    def import_errors(self) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = self.api("GET", "/importErrors")["import_errors"]
        return errors

    def wait_for_dags(self, dag_ids: Iterable[str], *, timeout: float = 90.0) -> None:
        """Wait until the dag-processor has serialised every DAG in ``dag_ids``, unpaused."""
        wanted = set(dag_ids)

        def parsed() -> bool:
            found = {
                dag["dag_id"]
                for dag in self.api("GET", "/dags", params={"limit": 1000})["dags"]
                if not dag["is_paused"]
            }
            return wanted <= found

        wait_until(
            parsed,
            timeout=timeout,
            message=lambda: (
                f"DAGs {sorted(wanted)} to be parsed; import errors: {self.import_errors()}"
            ),
        )

    def trigger(self, dag_id: str, *, conf: dict[str, Any] | None = None) -> str:
        """Create a manual DAG run now and return its run id."""
        body = {"logical_date": None, "conf": conf or {}}
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", json_body=body)
        run_id: str = run["dag_run_id"]
        return run_id

    def dag_run_state(self, dag_id: str, run_id: str) -> str:
        state: str = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
        return state

    def wait_for_runs(
        self,
        runs: Iterable[tuple[str, str]],
        *,
        timeout: float,
        on_poll: Callable[[], None] | None = None,
        interval: float = 1.0,
    ) -> dict[tuple[str, str], str]:
        """Wait until every ``(dag_id, run_id)`` is finished; return their final states.

        ``on_poll`` runs on every poll, so a test can observe intermediate task states.
        """
        pending = set(runs)
        states: dict[tuple[str, str], str] = {}

        def finished() -> bool:
            if on_poll is not None:
                on_poll()
            for key in sorted(pending):
                state = self.dag_run_state(*key)
                if state in TERMINAL_RUN_STATES:
                    states[key] = state
                    pending.discard(key)
            if self.dead_components():
                pytest.fail(f"Airflow component(s) died: {self.dead_components()}")
            return not pending

        wait_until(
            finished,
            timeout=timeout,
            interval=interval,
            message=lambda: (
                f"DAG runs to finish; still running: {sorted(pending)}; "
                f"task states: {self.task_states(pending)}"
            ),
        )
        return states

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Task instances of one run (state, start_date, end_date, try_number, pool...)."""
        tis: list[dict[str, Any]] = self.api(
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000}
        )["task_instances"]
        return tis

    def task_states(self, runs: Iterable[tuple[str, str]]) -> dict[str, str | None]:
        return {
            f"{ti['dag_id']}.{ti['task_id']}": ti["state"]
            for dag_id, run_id in runs
            for ti in self.task_instances(dag_id, run_id)
        }

    def task_tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """Every recorded try of a task instance (the current one included)."""
        tries: list[dict[str, Any]] = self.api(
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries"
        )["task_instances"]
        return tries

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        body = self.api(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true"},
        )
        content = body.get("content", "")
        if isinstance(content, list):
            return "\n".join(
                str(line.get("event", line)) if isinstance(line, dict) else str(line)
                for line in content
            )
        return str(content)

    # -- direct DB reads (what the REST API does not expose) --------------------------------
    def query(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """Read-only query on the metadata DB (e.g. trigger kwargs, task reschedules)."""
        import psycopg2
        import psycopg2.extras

        conn = psycopg2.connect(self.postgres.dsn)
        try:
            conn.set_session(readonly=True, autocommit=True)
            with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cursor:
                cursor.execute(sql, args or None)
                return [dict(row) for row in cursor.fetchall()]
        finally:
            conn.close()

    def deferred_until(self) -> dict[tuple[str, str, str], datetime]:
        """``(dag_id, run_id, task_id) -> moment`` of every task deferred on a DateTimeTrigger."""
        from cryptography.fernet import Fernet

        fernet = Fernet(self.env["AIRFLOW__CORE__FERNET_KEY"].encode())
        rows = self.query(
            "SELECT ti.dag_id, ti.run_id, ti.task_id, t.classpath, t.kwargs "
            "FROM task_instance ti JOIN trigger t ON ti.trigger_id = t.id "
            "WHERE ti.state = 'deferred'"
        )
        moments: dict[tuple[str, str, str], datetime] = {}
        for row in rows:
            if not row["classpath"].endswith("DateTimeTrigger"):
                continue
            raw = row["kwargs"]
            kwargs = json.loads(raw if raw.startswith("{") else fernet.decrypt(raw.encode()))
            moments[(row["dag_id"], row["run_id"], row["task_id"])] = _decode_moment(
                kwargs["moment"]
            )
        return moments

    def reschedules(self) -> dict[tuple[str, str, str], list[datetime]]:
        """``(dag_id, run_id, task_id) -> reschedule dates`` from AirflowRescheduleException."""
        rows = self.query(
            "SELECT ti.dag_id, ti.run_id, ti.task_id, tr.reschedule_date "
            "FROM task_reschedule tr JOIN task_instance ti ON tr.ti_id = ti.id "
            "ORDER BY tr.id"
        )
        found: dict[tuple[str, str, str], list[datetime]] = {}
        for row in rows:
            when: datetime = row["reschedule_date"]
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            found.setdefault((row["dag_id"], row["run_id"], row["task_id"]), []).append(when)
        return found


def _start_cluster(
    home: Path,
    postgres: Postgres,
    redis: Redis,
    *,
    dag_sources: Path = DAG_SOURCES,
    env_overrides: Mapping[str, str] | None = None,
    worker_concurrency: int = WORKER_CONCURRENCY,
) -> AirflowCluster:
    """Start every component on ``postgres`` and ``redis``, with the DAG files of ``dag_sources``.

    ``env_overrides`` and ``worker_concurrency`` let a benchmark run a bigger cluster (more
    task slots) than the integration tests' default.
    """
    started = time.monotonic()
    port = free_port()
    cluster = AirflowCluster(
        home=home,
        env={**_base_env(home, port, postgres, redis), **(env_overrides or {})},
        port=port,
        postgres=postgres,
        redis=redis,
        worker_concurrency=worker_concurrency,
    )
    cluster.dags_folder.mkdir(parents=True, exist_ok=True)
    for source in sorted(dag_sources.glob("*.py")):
        shutil.copy(source, cluster.dags_folder / source.name)
    cluster.cli("db", "migrate")
    cluster.timings["db migrate"] = time.monotonic() - started
    try:
        cluster.start("api-server", "--port", str(port), "--host", "127.0.0.1")
        # The log servers would listen on every interface; the api-server reads the task
        # logs from the shared AIRFLOW_HOME instead.
        cluster.start("scheduler", "--skip-serve-logs")
        cluster.start("dag-processor")
        cluster.start("triggerer", "--skip-serve-logs")
        cluster.start_workers(*WORKERS)
        cluster.timings["workers"] = time.monotonic() - started

        def ready() -> bool:
            if cluster.dead_components():
                pytest.fail(
                    f"Airflow component(s) exited during startup: {cluster.dead_components()}\n"
                    f"{cluster.log_tails()}"
                )
            return cluster.healthy()

        wait_until(
            ready,
            timeout=STARTUP_TIMEOUT,
            message=lambda: f"a healthy Airflow\n{cluster.log_tails()}",
        )
        cluster.timings["healthy"] = time.monotonic() - started
        cluster.set_pool("clarity_api", 1)
    except BaseException:
        cluster.stop()
        raise
    cluster.startup_seconds = time.monotonic() - started
    return cluster
