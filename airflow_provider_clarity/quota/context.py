"""Who is calling, and whether the pool that serialises the ledger is in place.

The ledger's view of the running Airflow: the caller label of a task instance, and
advice about the ``clarity_api`` pool (a warning from a task, a note from the API server).
"""

from __future__ import annotations

import logging
from typing import Any

from airflow_provider_clarity.quota.lock import LockScope, lock_scope
from airflow_provider_clarity.quota.records import OUTSIDE_AIRFLOW
from airflow_provider_clarity.quota.store import in_task

log = logging.getLogger(__name__)

DEFAULT_POOL = "clarity_api"
"""The pool every Clarity export runs in. On one host, or with a shared ``[clarity]
ledger_lock_dir``, it may have a slot per project in parallel; otherwise it must have 1 slot,
since it is then what serialises the ledger's writes."""


def caller_label(ti: Any) -> str:
    """``dag_id/task_id/run_id/map_index`` of a task instance: who a ledger entry is for."""
    map_index = getattr(ti, "map_index", -1)
    return f"{ti.dag_id}/{ti.task_id}/{ti.run_id}/{-1 if map_index is None else map_index}"


def split_caller_label(label: str) -> tuple[str, str, str, int] | None:
    """``(dag_id, task_id, run_id, map_index)`` of a ``caller_label``; ``None`` for any other
    label (``outside-airflow``, a person's name). Run ids may hold ``/``; dag and task ids cannot.
    """
    parts = label.split("/", 2)
    if len(parts) == 3 and "/" in parts[2]:
        run_id, _, index = parts[2].rpartition("/")
        if run_id and index.lstrip("-").isdigit():
            return parts[0], parts[1], run_id, int(index)
    return None


def current_caller(default: str = OUTSIDE_AIRFLOW) -> str:
    """Return ``caller_label`` of the running task instance, else ``default``."""
    try:
        from airflow.sdk import get_current_context

        return caller_label(get_current_context()["ti"])
    except Exception:  # no task is running: a script, the CLI, a unit test
        return default


def current_pool() -> str | None:
    """The pool of the running task instance, else ``None`` (a script, the CLI, a unit test)."""
    try:
        from airflow.sdk import get_current_context

        context = get_current_context()
    except Exception:
        return None
    task = context.get("task") or getattr(context.get("ti"), "task", None)
    pool = getattr(task, "pool", None)
    return str(pool) if pool else None


def writes_serialised(scope: LockScope, task_pool: str | None, *, pool: str = DEFAULT_POOL) -> bool:
    """The one rule: a writer's ledger writes are serialised when the lock covers every
    writer, or else when it is a task in ``pool`` (which must then have 1 slot)."""
    return scope.covers_every_writer or task_pool == pool


def unserialised_writer(scope: LockScope, *, pool: str = DEFAULT_POOL) -> str | None:
    """Why this process must not write a ledger, or ``None`` when its writes are serialised.

    They are when the ledger lock covers every writer (one host, or a shared
    ``[clarity] ledger_lock_dir``), or else when this is a task in ``pool``, which must then
    have 1 slot (``pool_fault`` says so where the slots can be read).
    """
    task_pool = current_pool()
    if writes_serialised(scope, task_pool, pool=pool):
        return None
    who = f"this task runs in pool {task_pool!r}" if task_pool else "this process is no task"
    return (
        f"Refusing to count a Clarity call in the quota ledger: with {scope.executor} tasks run "
        f"on several hosts and no [clarity] ledger_lock_dir is set, so only tasks in the 1-slot "
        f"pool '{pool}' are serialised, and {who}. Two such writers could both spend the last "
        f"call. Run the task in pool '{pool}' (`@task(pool=\"{pool}\")`, or pool= on the "
        f"operator), or set [clarity] ledger_lock_dir (AIRFLOW__CLARITY__LEDGER_LOCK_DIR) to a "
        f"directory every worker mounts, which also lets different projects call in parallel. "
        f"No Clarity call was made."
    )


def pool_fault(pool: str = DEFAULT_POOL, *, scope: LockScope | None = None) -> str | None:
    """Say what is wrong when the ledger relies on ``pool`` and it has more than one slot.

    The ledger relies on the pool only where its lock does not cover every writer
    (``LockScope.covers_every_writer``). Read from the metadata DB: for the API server, the
    CLI and ``test_connection``; ``None`` where the DB cannot be read (a task, a unit test).
    """
    if in_task():
        return None
    scope = scope or lock_scope()
    if scope.covers_every_writer:
        return None
    try:
        from airflow.models.pool import Pool

        found = Pool.get_pool(pool)
    except Exception:
        return None
    if found is None or found.slots == 1:
        return None
    slots = "unlimited" if found.slots < 0 else str(found.slots)
    return (
        f"Fault: the pool '{pool}' has {slots} slots, but with {scope.executor} and no "
        f"[clarity] ledger_lock_dir the quota ledger relies on that pool running one Clarity "
        f"call at a time: two tasks could both spend the last call. Set it to 1 slot "
        f'(`airflow pools set {pool} 1 "Clarity API calls"`), or set [clarity] ledger_lock_dir '
        f"to a directory every worker mounts (then the pool may have a slot per project)."
    )


def warn_if_unsafe_pool(
    task: Any, *, pool: str = DEFAULT_POOL, scope: LockScope | None = None
) -> bool:
    """Warn (and return ``False``) when ``task``'s calls will be refused by the ledger.

    That is the case on executors that run tasks on several hosts without a shared
    ``[clarity] ledger_lock_dir``, for a task outside ``pool`` (``unserialised_writer``). On
    one host, or with a shared lock dir, every pool is safe: the ledger lock serialises the
    writes.
    """
    scope = scope or lock_scope()
    task_pool = getattr(task, "pool", None)
    if writes_serialised(scope, task_pool, pool=pool):
        return True
    log.warning(
        "Task %s runs in pool %r, not %r. With %s and no [clarity] ledger_lock_dir, the Clarity "
        "quota ledger only counts calls from tasks in that 1-slot pool, so this task's call "
        "will be refused. Leave the task's pool at its default, or set [clarity] "
        "ledger_lock_dir to a directory every worker mounts.",
        getattr(task, "task_id", task),
        task_pool,
        pool,
        scope.executor,
    )
    return False


def missing_pool_note(pool: str = DEFAULT_POOL) -> str | None:
    """Say how to create ``pool`` when the metadata DB shows it does not exist; else ``None``.

    Airflow never schedules a task whose pool is missing, and its DAG processor does not warn
    about it either: the task just stays "scheduled". This is advice for places that can read
    the metadata DB (the API server testing a connection, the CLI). Where the DB cannot be
    read (a task, a unit test without a DB) it returns ``None`` rather than guess.
    """
    if in_task():
        return None
    try:
        from airflow.models.pool import Pool

        if Pool.get_pool(pool) is not None:
            return None
    except Exception:
        return None
    return (
        f"Note: the pool '{pool}' does not exist, so Clarity export tasks will stay 'scheduled' "
        f'and never run. Create it with `airflow pools set {pool} 1 "Clarity API calls"` '
        "(or Admin > Pools in the UI)."
    )
