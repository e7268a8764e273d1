"""One ledger writer at a time: an exclusive file lock around each read-check-write.

Airflow Variables have no compare-and-set, so two processes that read a ledger, both see the
last free call and both write it back would spend it twice. Every write of a ledger
(``QuotaLedger.before_call``, ``after_call``, ``wake_at``, ``mark_degraded``) therefore runs
under an exclusive ``flock`` on ``<lock dir>/<ledger key>.lock``; the lock is held for the
Variable's read and write, never while Clarity answers.

The lock dir is ``[clarity] ledger_lock_dir`` (``AIRFLOW__CLARITY__LEDGER_LOCK_DIR``) when set,
else ``$AIRFLOW_HOME/clarity-ledger-locks``. A lock only serialises processes that see the same
directory: every process on one host does; processes on several hosts do when the setting
names a mount they all share (NFS and most shared file systems honour ``flock``).
``LockScope.covers_every_writer`` says whether that holds for the configured executors; where
it does not, ``QuotaLedger`` relies on the 1-slot ``clarity_api`` pool and refuses every other
writer before a call (docs/quota.md, "Parallel calls").
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from airflow_provider_clarity.exceptions import ClarityLedgerError, ClarityLockTimeoutError

LOCK_DIR_OPTION = ("clarity", "ledger_lock_dir")
"""The Airflow config option naming a lock dir every host that runs Clarity tasks shares."""

DEFAULT_LOCK_SUBDIR = "clarity-ledger-locks"
"""The lock dir under ``$AIRFLOW_HOME`` when ``[clarity] ledger_lock_dir`` is not set."""

#: Executors whose tasks all run on the host of the scheduler that queued them.
SINGLE_HOST_EXECUTORS = frozenset({"LocalExecutor", "SequentialExecutor", "DebugExecutor"})

#: How long a writer waits for another's read-and-write (a few ms each) before giving up.
LOCK_TIMEOUT_SECONDS = 120.0

#: How long an export waits at least for other exports of its project to get Clarity's answer
#: (a call with its retries takes at most about 4 x 60 s); longer for slower hooks.
CALL_LOCK_TIMEOUT_SECONDS = 900.0


@dataclass(frozen=True)
class LockScope:
    """Where ledger locks live, and whether they serialise every process that writes a ledger."""

    directory: Path
    configured: bool
    """Named by ``[clarity] ledger_lock_dir``: the user says every Clarity host shares it."""
    executors: tuple[str, ...]
    """The configured executors' class names (``[core] executor``, comma-separated in 3.x)."""

    @property
    def single_host(self) -> bool:
        """Whether every configured executor runs tasks on this one host."""
        return all(name in SINGLE_HOST_EXECUTORS for name in self.executors)

    @property
    def covers_every_writer(self) -> bool:
        """Whether the lock alone serialises every ledger writer, whatever their pools."""
        return self.configured or self.single_host

    def describe(self) -> str:
        """One line for people: where the locks are and what they cover."""
        if self.configured:
            return f"ledger locks in {self.directory} ([clarity] ledger_lock_dir, shared)"
        hosts = "this host's" if self.single_host else "this host's only"
        return f"ledger locks in {self.directory} ({hosts} processes; executor {self.executor})"

    @property
    def executor(self) -> str:
        return ",".join(self.executors) or "LocalExecutor"


def _executor_names(value: str) -> tuple[str, ...]:
    """Class names of ``[core] executor``: ``"CeleryExecutor"``, ``"a.b.MyExecutor"`` or a
    comma list (Airflow 3's several executors, each maybe ``alias:path``)."""
    names = []
    for item in value.split(","):
        item = item.strip()
        if item:
            names.append(item.rsplit(":", 1)[-1].rsplit(".", 1)[-1])
    return tuple(names) or ("LocalExecutor",)


def lock_scope() -> LockScope:
    """Read the lock dir and the executors from Airflow's configuration."""
    from airflow_provider_clarity.version_compat import conf

    named = (conf.get(*LOCK_DIR_OPTION, fallback="") or "").strip()
    executors = _executor_names(conf.get("core", "executor", fallback="") or "")
    if os.environ.get("AIRFLOW_IS_K8S_EXECUTOR_POD"):
        # The official chart's task pods say LocalExecutor, yet each pod is a host of its own.
        executors = ("KubernetesExecutor",)
    if named:
        return LockScope(Path(os.path.expanduser(named)), True, executors)
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    return LockScope(Path(home) / DEFAULT_LOCK_SUBDIR, False, executors)


@contextmanager
def ledger_lock(
    key: str, *, scope: LockScope | None = None, timeout: float = LOCK_TIMEOUT_SECONDS
) -> Iterator[Path]:
    """Hold the exclusive lock of ledger ``key`` for the ``with`` block; yield its file.

    :raises ClarityLedgerError: the lock dir cannot be created or written, or takes no flock.
    :raises ClarityLockTimeoutError: another process held the lock over ``timeout`` seconds.
    """
    scope = scope or lock_scope()
    path = scope.directory / f"{key}.lock"
    try:
        scope.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o660)
    except OSError as err:
        raise ClarityLedgerError(
            f"The Clarity quota ledger's lock {path} cannot be opened ({err.strerror}). Make "
            f"the directory writable for the Airflow user, or point [clarity] ledger_lock_dir "
            f"(AIRFLOW__CLARITY__LEDGER_LOCK_DIR) at one that is."
        ) from None
    try:
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as err:
                if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise ClarityLedgerError(
                        f"The Clarity quota ledger's lock {path} cannot be taken "
                        f"({err.strerror}); the file system may not support flock. Point "
                        f"[clarity] ledger_lock_dir at one that does."
                    ) from None
                if time.monotonic() >= deadline:
                    raise ClarityLockTimeoutError(
                        f"Another process held the Clarity quota lock {path} for over "
                        f"{timeout:g} s; if that lasts, it may be hung (find it with "
                        f"`fuser {path}`)."
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def project_call_lock(
    key: str, *, read_timeout: float = 60.0, retries: int = 2
) -> AbstractContextManager[Path]:
    """Held by an export from its look for a shared snapshot until Clarity answered it.

    Exports of one project then run one after another, as in a 1-slot pool, so the second of
    two asking the same thing reuses the first one's answer instead of calling too; exports of
    different projects (different ``key``) still run in parallel. Waiting longer than any
    call of the hook (``read_timeout``, ``retries``) can take, or ``CALL_LOCK_TIMEOUT_SECONDS``,
    raises ``ClarityLockTimeoutError``.
    """
    longest = (retries + 1) * (read_timeout + 15) + 60 * retries
    return ledger_lock(f"{key}.calls", timeout=max(CALL_LOCK_TIMEOUT_SECONDS, longest))
