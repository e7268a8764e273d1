"""The per-project quota ledger: who spent which of Clarity's 10 daily calls, and when.

A package of small modules, each with one job:

- ``records.py``: ``CallRecord``, ``Outcome`` and the stored JSON document (version 1);
- ``store.py``: where that document lives (a Variable, or memory) and ``ledger_key``;
- ``ledger.py``: ``QuotaLedger``, which counts calls inside the windows ``settings.py`` defines;
- ``report.py``: the usage report and refusal messages, from a ``QuotaStatus``;
- ``context.py``: the caller label of a task, and advice about the ``clarity_api`` pool;
- ``cli.py`` / ``__main__.py``: ``python -m airflow_provider_clarity.quota usage <id>``.

The names below are the public surface; import them from here.
"""

from __future__ import annotations

from airflow_provider_clarity.connection.settings import KEEP_AT_LEAST, QuotaSettings, Window
from airflow_provider_clarity.quota.context import (
    DEFAULT_POOL,
    caller_label,
    current_caller,
    missing_pool_note,
    warn_if_unsafe_pool,
)
from airflow_provider_clarity.quota.ledger import QuotaLedger
from airflow_provider_clarity.quota.records import (
    OUTSIDE_AIRFLOW,
    SCHEMA_VERSION,
    CallRecord,
    Outcome,
)
from airflow_provider_clarity.quota.report import QuotaStatus
from airflow_provider_clarity.quota.store import (
    VARIABLE_PREFIX,
    LedgerStore,
    MemoryLedgerStore,
    VariableLedgerStore,
    in_task,
    ledger_key,
)

PENDING = Outcome.PENDING


def main(argv: list[str] | None = None) -> int:
    """The ``usage`` command (``quota/cli.py``), imported only when run: DAG files that
    import the operator never pay for argparse."""
    from airflow_provider_clarity.quota.cli import main as run

    return run(argv)


WINDOWS = tuple(window.value for window in Window)

__all__ = [
    "DEFAULT_POOL",
    "KEEP_AT_LEAST",
    "OUTSIDE_AIRFLOW",
    "PENDING",
    "SCHEMA_VERSION",
    "VARIABLE_PREFIX",
    "WINDOWS",
    "CallRecord",
    "LedgerStore",
    "MemoryLedgerStore",
    "Outcome",
    "QuotaLedger",
    "QuotaSettings",
    "QuotaStatus",
    "VariableLedgerStore",
    "Window",
    "caller_label",
    "current_caller",
    "in_task",
    "ledger_key",
    "main",
    "missing_pool_note",
    "warn_if_unsafe_pool",
]
