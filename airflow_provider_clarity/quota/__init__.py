"""The per-project quota ledger: who spent which of Clarity's 10 daily calls, and when.

A package of small modules, each with one job:

- ``records.py``: ``CallRecord``, ``Outcome`` and the stored JSON document (version 2);
- ``store.py``: where that document lives (a Variable, or memory) and ``ledger_key``;
- ``ledger.py``: ``QuotaLedger``, which counts calls inside the windows of ``connection.settings``;
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
    LEDGER_DOCUMENT_VERSION,
    OUTSIDE_AIRFLOW,
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


def main(argv: list[str] | None = None) -> int:
    """The ``usage`` command (``quota/cli.py``), imported only when run: DAG files that
    import the operator never pay for argparse."""
    from airflow_provider_clarity.quota.cli import main as run

    return run(argv)


__all__ = [
    "DEFAULT_POOL",
    "KEEP_AT_LEAST",
    "LEDGER_DOCUMENT_VERSION",
    "OUTSIDE_AIRFLOW",
    "VARIABLE_PREFIX",
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
