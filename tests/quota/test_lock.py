"""The ledger lock: which executors it covers, and that it really excludes another process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from airflow_provider_clarity.exceptions import ClarityLedgerError, ClarityLockTimeoutError
from airflow_provider_clarity.quota import QuotaLedger
from airflow_provider_clarity.quota.lock import LockScope, ledger_lock, lock_scope


@pytest.mark.parametrize(
    ("executor", "single_host"),
    [
        ("LocalExecutor", True),
        ("", True),  # Airflow's default
        ("airflow.executors.local_executor.LocalExecutor", True),
        ("CeleryExecutor", False),
        ("KubernetesExecutor", False),
        ("LocalExecutor,CeleryExecutor", False),
        ("fast:LocalExecutor, slow:my.company.EdgeExecutor", False),
    ],
)
def test_the_lock_covers_every_writer_only_on_one_host_or_with_a_shared_dir(
    executor: str, single_host: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", executor)
    monkeypatch.delenv("AIRFLOW__CLARITY__LEDGER_LOCK_DIR", raising=False)
    scope = lock_scope()
    assert scope.single_host is single_host
    assert scope.covers_every_writer is single_host
    assert not scope.configured and scope.directory.name == "clarity-ledger-locks"
    monkeypatch.setenv("AIRFLOW__CLARITY__LEDGER_LOCK_DIR", str(tmp_path))
    shared = lock_scope()
    assert shared.configured and shared.covers_every_writer and shared.directory == tmp_path


def test_a_held_lock_excludes_another_process(tmp_path: Path) -> None:
    scope = LockScope(tmp_path, configured=True, executors=("LocalExecutor",))
    probe = textwrap.dedent(
        f"""
        import fcntl, os, sys
        fd = os.open({str(tmp_path / "k.lock")!r}, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            sys.exit(3)
        """
    )
    with ledger_lock("k", scope=scope):
        held = subprocess.run([sys.executable, "-c", probe], check=False)
    free = subprocess.run([sys.executable, "-c", probe], check=False)
    assert (held.returncode, free.returncode) == (3, 0)


def test_a_lock_held_too_long_refuses_the_call_and_says_where(tmp_path: Path) -> None:
    scope = LockScope(tmp_path, configured=True, executors=("LocalExecutor",))
    with (
        ledger_lock("k", scope=scope),
        pytest.raises(ClarityLockTimeoutError, match=r"k\.lock for over 0\.2 s"),
        ledger_lock("k", scope=scope, timeout=0.2),
    ):
        pass


def test_an_unwritable_lock_dir_refuses_the_call_before_anything_is_recorded(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    scope = LockScope(blocker / "locks", configured=True, executors=("LocalExecutor",))
    ledger = QuotaLedger("p", lock=scope)
    from airflow_provider_clarity.quota import MemoryLedgerStore

    ledger.store = MemoryLedgerStore()
    with pytest.raises(ClarityLedgerError, match="ledger_lock_dir"):
        ledger.before_call(None)
    assert ledger.records() == []


def test_a_kubernetes_task_pod_is_never_taken_for_a_single_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The official chart's pod template sets LocalExecutor inside every task pod."""
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    monkeypatch.delenv("AIRFLOW__CLARITY__LEDGER_LOCK_DIR", raising=False)
    monkeypatch.setenv("AIRFLOW_IS_K8S_EXECUTOR_POD", "True")
    scope = lock_scope()
    assert not scope.single_host and not scope.covers_every_writer
    assert scope.executor == "KubernetesExecutor"
