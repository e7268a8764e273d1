"""Suite-wide Airflow setup: a throwaway AIRFLOW_HOME with a migrated sqlite metadata DB.

The environment is set at import time, before any test module imports Airflow, because
Airflow reads its configuration when it is first imported.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="clarity-test-airflow-home-"))
atexit.register(shutil.rmtree, AIRFLOW_HOME, ignore_errors=True)
DAGS_FOLDER = AIRFLOW_HOME / "dags"
DAGS_FOLDER.mkdir()

os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
# One key for this process and every airflow CLI it starts, so Variables and
# connections written by one can be read by the other.
os.environ.setdefault("AIRFLOW__CORE__FERNET_KEY", "lM3sA4nX6V9rY0wQ2tE5uI8oP1aS3dF6gH9jK2lZ4xc=")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}"
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")
# Tests must never reach the internet; these keep Airflow's own helpers quiet.
os.environ["AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES_REGEXP"] = ".*"
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")

_MIGRATED = False


def migrate_airflow_db() -> None:
    """Create the metadata DB once per test session (about 3 s on sqlite)."""
    global _MIGRATED
    if _MIGRATED:
        return
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    _MIGRATED = True


@pytest.fixture(autouse=True)
def _forget_quota_ledgers() -> Iterator[None]:
    """Every test starts with no quota ledger and no shared-snapshot index: direct hook calls
    are counted by default, so one test's calls would otherwise spend the next test's quota,
    and an indexed answer could serve the next test's export (same emulator project)."""
    yield
    database = AIRFLOW_HOME / "airflow.db"
    if _MIGRATED and database.exists():
        import sqlite3
        from contextlib import closing

        # Closed at once: `with sqlite3.connect()` alone only commits, and hundreds of open
        # connections left to the garbage collector ended in "disk I/O error" on this DB.
        with closing(sqlite3.connect(database, timeout=30)) as db, db:
            for prefix in ("clarity\\_quota\\_\\_%", "clarity\\_snapshots\\_\\_%"):
                db.execute("DELETE FROM variable WHERE key LIKE ? ESCAPE '\\'", (prefix,))


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated metadata DB under the session's AIRFLOW_HOME."""
    migrate_airflow_db()
    return AIRFLOW_HOME


@pytest.fixture
def run_dag(airflow_db: Path) -> Iterator[Any]:
    """Run a DAG file with ``dag.test()`` and return the DagRun.

    The file is copied into the configured dags folder, because ``dag.test()`` only runs
    DAGs that the dags-folder bundle can find. ``dag.test()`` ignores pools and runs
    triggers inline: anything about pools or deferral belongs in tests/integration.
    """
    copied: list[Path] = []

    def _run(dag_file: Path, dag_id: str, **kwargs: Any) -> Any:
        """``logical_date=None`` is passed on: a run without one, as `airflow dags trigger`."""
        from airflow_provider_clarity.version_compat import DagBag

        target = DAGS_FOLDER / dag_file.name
        shutil.copy(dag_file, target)
        copied.append(target)
        bag = DagBag(dag_folder=str(target))
        assert not bag.import_errors, bag.import_errors
        dag = bag.get_dag(dag_id)
        assert dag is not None, f"{dag_id} not found in {dag_file}"
        return dag.test(**kwargs)

    yield _run
    for path in copied:
        path.unlink(missing_ok=True)


@pytest.fixture
def scheduled_dags(airflow_db: Path) -> Iterator[Any]:
    """Put DAG files in the metadata DB as the DAG processor does, unpaused: the scheduler's
    view (serialized DAG, ``DagModel.next_dagrun_create_after``) that the api-server reads.

    ``add(dag_file, *dag_ids)`` returns the DagModels. On teardown the DAGs are paused and
    marked stale, so later tests and api-servers on this DB do not count them.
    """
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    from airflow_provider_clarity.version_compat import (
        AIRFLOW_V_3_2_PLUS,
        BundleDagBag,
        sync_bag_to_db,
    )

    # 3.1's BundleDagBag takes no bundle name (the bundle is named when syncing only).
    named = {"bundle_name": "dags-folder"} if AIRFLOW_V_3_2_PLUS else {}

    added: list[tuple[Path, list[str]]] = []

    def add(dag_file: Path, *dag_ids: str, paused: bool = False) -> dict[str, Any]:
        from airflow.dag_processing.bundles.manager import DagBundlesManager

        DagBundlesManager().sync_bundles_to_db()
        target = DAGS_FOLDER / dag_file.name
        shutil.copy(dag_file, target)
        added.append((target, list(dag_ids)))
        bag = BundleDagBag(dag_folder=str(target), bundle_path=DAGS_FOLDER, **named)
        assert not bag.import_errors, bag.import_errors
        sync_bag_to_db(bag, "dags-folder", None)
        with create_session() as session:
            models = {d: session.get(DagModel, d) for d in dag_ids}
            for dag_id, model in models.items():
                assert model is not None, f"{dag_id} is not in {dag_file}"
                model.is_paused, model.is_stale = paused, False
            session.flush()
            session.expunge_all()
        return models

    yield add
    with create_session() as session:
        for target, dag_ids in added:
            target.unlink(missing_ok=True)
            for dag_id in dag_ids:
                if (model := session.get(DagModel, dag_id)) is not None:
                    model.is_paused, model.is_stale = True, True


# ------------------------------------------------------------------ S3 (moto) on loopback

S3_BUCKET = "clarity-bucket"
"""The bucket the ``s3`` fixture creates (empty) for each test."""


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 server on a free 127.0.0.1 port, for the whole session: its base URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A boto3 S3 client with an empty ``S3_BUCKET``; ``aws_default`` points at moto.

    The connection carries dummy keys and the moto endpoint in its extra, the AWS
    credential variables of the calling shell are hidden, and ObjectStoragePath's
    filesystem cache starts empty, so nothing can reach real AWS.
    """
    import boto3
    from airflow.sdk.io import store

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": moto_endpoint, "region_name": "us-east-1"},
            }
        ),
    )
    # Filesystems are cached per protocol and connection id: start from a clean slate.
    monkeypatch.setattr(store, "_STORE_CACHE", {})
    client = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=S3_BUCKET)
    yield client
    for item in client.list_objects_v2(Bucket=S3_BUCKET).get("Contents", []):
        client.delete_object(Bucket=S3_BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=S3_BUCKET)


@pytest.fixture
def task_log(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> Any:
    """Everything logged so far: stdlib records and the task logger's structlog output.

    Task code logs through structlog to stdout/stderr as well as through stdlib logging,
    so token-leak and message checks must read both.
    """
    caplog.set_level(logging.INFO)
    seen: list[str] = []

    def read() -> str:
        out, err = capfd.readouterr()
        seen.extend([out, err])
        return caplog.text + "".join(seen)

    return read
