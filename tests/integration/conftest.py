"""A real Airflow for the integration tests, deployed as production runs it.

``dag.test()`` ignores pools and runs triggers inline, so whatever depends on pools,
deferral, rescheduling, retries or worker isolation is proven here, under the real
components: scheduler, dag-processor, triggerer and api-server, on a private PostgreSQL
metadata DB, with CeleryExecutor, a Redis broker and two Celery workers (``worker-1``,
``worker-2``; concurrency 2 each) that record different host names (``worker_host.py``).
See ``services.py`` for the servers; without them (``make services``) every test here
skips and says why.

The cluster gets its own ``AIRFLOW_HOME`` and an environment built from scratch: nothing
from the in-process tests' Airflow settings (``tests/conftest.py``) leaks into it. Only the
api-server, PostgreSQL and Redis listen, on 127.0.0.1 (the log servers are off: every
component shares the home's log folder). Set ``CLARITY_IT_KEEP_HOME=1`` to keep that home
(logs) after the session for debugging.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cluster import AirflowCluster, _start_cluster
from tests.integration.services import Postgres, Redis, missing_services


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "integration: runs a real Airflow (scheduler, dag-processor, triggerer, api-server)",
    )


@pytest.fixture(scope="session")
def airflow_cluster() -> Iterator[AirflowCluster]:
    """A running Airflow (PostgreSQL, CeleryExecutor, two workers) with every integration DAG.

    The pool ``clarity_api`` exists with 1 slot. Session-scoped: starting it costs 30-60 s
    on two cores, and the tests keep apart by DAG id, connection and Clarity project.
    Skips (saying why) when PostgreSQL or Redis is not installed.
    """
    why = missing_services()
    if why:
        pytest.skip(f"PostgreSQL + Celery integration tests skipped: {why}")
    started = time.monotonic()
    postgres = Postgres.start()
    redis: Redis | None = None
    home = Path(tempfile.mkdtemp(prefix="clarity-it-airflow-"))
    keep = bool(os.environ.get("CLARITY_IT_KEEP_HOME"))
    try:
        redis = Redis.start()
        sys.stderr.write(
            f"\n[integration] PostgreSQL on port {postgres.port} and Redis on port "
            f"{redis.port} in {time.monotonic() - started:.1f} s\n"
        )
        cluster = _start_cluster(home, postgres, redis)
    except BaseException:
        if redis is not None:
            redis.stop()
        postgres.stop()
        if not keep:
            shutil.rmtree(home, ignore_errors=True)
        raise
    phases = ", ".join(f"{name} at {secs:.1f} s" for name, secs in cluster.timings.items())
    sys.stderr.write(
        f"\n[integration] Airflow ready in {cluster.startup_seconds:.1f} s ({phases})\n"
    )
    try:
        yield cluster
    finally:
        stopping = time.monotonic()
        cluster.stop()
        redis.stop()
        postgres.stop()
        sys.stderr.write(f"[integration] Airflow stopped in {time.monotonic() - stopping:.1f} s\n")
        if keep:
            sys.stderr.write(f"[integration] kept AIRFLOW_HOME {home}\n")
        else:
            shutil.rmtree(home, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome: Any = yield
    report: pytest.TestReport = outcome.get_result()
    cluster = getattr(item, "funcargs", {}).get("airflow_cluster")
    if report.failed and isinstance(cluster, AirflowCluster):
        report.sections.append(("Airflow component logs (tails)", cluster.log_tails(60)))
        with contextlib.suppress(Exception):
            report.sections.append(("Failed task logs (tails)", cluster.failed_task_logs()))
