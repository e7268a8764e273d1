"""The integration cluster's environment: paths, timeouts, a from-scratch env, log parsing."""

from __future__ import annotations

import os
import re
import secrets
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.integration.services import Postgres, Redis, free_port

INTEGRATION_DIR = Path(__file__).resolve().parent
DAG_SOURCES = INTEGRATION_DIR / "dags"
AIRFLOW_BIN = Path(sys.executable).parent / "airflow"
STARTUP_TIMEOUT = 180.0
WORKERS = ("worker-1", "worker-2")
WORKER_CONCURRENCY = 2
HEARTBEAT_TIMEOUT = 20
TERMINAL_RUN_STATES = frozenset({"success", "failed"})
LEDGER_LOCK_SUBDIR = "shared-ledger-locks"

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.5,
    message: str | Callable[[], str] = "condition",
) -> T:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            text = message() if callable(message) else message
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {text}")
        time.sleep(interval)


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text[-lines:])


def _base_env(home: Path, port: int, postgres: Postgres, redis: Redis) -> dict[str, str]:
    """The cluster's environment: this interpreter's PATH, none of the caller's Airflow settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "_AIRFLOW", "PYTEST", "COV_CORE"))
    }
    from cryptography.fernet import Fernet

    base_url = f"http://127.0.0.1:{port}"
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "PATH": f"{AIRFLOW_BIN.parent}{os.pathsep}{env.get('PATH', '')}",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.integration.worker_host.hostname",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.sqlalchemy_url,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "2",
            "AIRFLOW__CELERY__BROKER_URL": redis.url,
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{postgres.sqlalchemy_url}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
            "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
            # A worker killed with SIGKILL stops heartbeating: its task is failed (and
            # retried) after this long rather than the default 5 minutes.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "3",
            "AIRFLOW__API__BASE_URL": base_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "600",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            # Both workers run on this machine: this folder is the mount every "host" shares,
            # so the quota ledger's lock serialises every writer and `clarity_api` may have
            # many slots (docs/quota.md, "Parallel calls").
            "AIRFLOW__CLARITY__LEDGER_LOCK_DIR": str(home / LEDGER_LOCK_SUBDIR),
        }
    )
    return env


_WORKLOAD_TI = re.compile(
    r"ti=TaskInstanceDTO\(id=UUID\('([^']+)'\), task_id='([^']+)', dag_id='([^']+)'"
)
_WORKLOAD_DONE = re.compile(r"Workload finished .*workload_id=(\S+)")
_EXECUTOR_EVENT = re.compile(
    r"Received executor event with state (?:success|failed) for task instance "
    r"TaskInstanceKey\(dag_id='([^']+)', task_id='([^']+)'"
)


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except OSError:
        return []


def _log_time(line: str) -> datetime | None:
    try:
        return datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00"))
    except ValueError:
        return None


def _decode_moment(value: Any) -> datetime:
    """A trigger's serialised ``moment``: serde (``__data__.timestamp``) or BaseSerialization."""
    if isinstance(value, dict):
        data = value.get("__data__", value.get("__var", value))
        if isinstance(data, dict):
            data = data.get("timestamp", data)
        value = data
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    return datetime.fromisoformat(str(value))
