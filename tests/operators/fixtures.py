"""Fixtures and helpers of the operator tests: a task context, an in-memory ledger, a connection."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_provider_clarity.quota import MemoryLedgerStore, QuotaLedger, ledger_key

PROJECT = "demo-project"


# ------------------------------------------------------------------ helpers (test_export_s3 too)


class FakeTaskStateStore:
    """Stands in for ``context["task_state_store"]``; values go through JSON like the real one."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, *, retention: timedelta | None = None) -> None:
        self.values[key] = json.loads(json.dumps(value))

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def make_context(
    *,
    interval_end: datetime | None = None,
    state_store: FakeTaskStateStore | None = None,
    with_state_store: bool = True,
) -> Any:
    """The parts of an Airflow task context the operator reads (a dict, typed loosely)."""
    end = datetime.now(UTC) if interval_end is None else interval_end
    ti = SimpleNamespace(
        dag_id="clarity_test", task_id="export", run_id="scheduled__test", map_index=-1
    )
    context: dict[str, Any] = {
        "ti": ti,
        "outlet_events": OutletEventAccessors(),
        "data_interval_end": end,
        "logical_date": end,
    }
    if with_state_store:
        context["task_state_store"] = (
            state_store if state_store is not None else FakeTaskStateStore()
        )
    return context


@pytest.fixture
def ledger_store(monkeypatch: pytest.MonkeyPatch) -> MemoryLedgerStore:
    """Make every ledger the operator builds share one in-memory store (no Airflow DB)."""
    store = MemoryLedgerStore()
    for_hook = QuotaLedger.for_hook.__func__  # type: ignore[attr-defined]

    def with_memory_store(cls: type[QuotaLedger], hook: Any, **kwargs: Any) -> QuotaLedger:
        kwargs.setdefault("store", store)
        return for_hook(cls, hook, **kwargs)

    monkeypatch.setattr(QuotaLedger, "for_hook", classmethod(with_memory_store))
    return store


@pytest.fixture
def conn(clarity_connection: str, ledger_store: MemoryLedgerStore) -> str:
    """The emulator connection, with the in-memory ledger in place."""
    return clarity_connection


def spend_ledger(store: MemoryLedgerStore, calls: int = 10) -> QuotaLedger:
    """Record ``calls`` successful calls by another DAG in the ledger."""
    ledger = QuotaLedger(PROJECT, store=store, caller="other_dag/other_task/run/-1")
    for _ in range(calls):
        ledger.before_call(None)
        ledger.after_call(None, "200")
    return ledger


def _values(series: pd.Series) -> list[Any]:
    return [None if pd.isna(value) else value for value in series]


def assert_no_token(token: str, *texts: str) -> None:
    """Neither the token nor any 24-character piece of it appears in ``texts``."""
    pieces = {token[i : i + 24] for i in range(max(1, len(token) - 23))}
    for text in texts:
        assert not any(piece in text for piece in pieces)


# ------------------------------------------------------------------ whole DAGs with dag.test()


@pytest.fixture
def variable_ledger(airflow_db: Path) -> Iterator[QuotaLedger]:
    """The real Variable-backed ledger for the emulator project, empty before and after."""
    from airflow.models.variable import Variable

    key = ledger_key(PROJECT)
    Variable.delete(key)
    yield QuotaLedger(PROJECT)
    Variable.delete(key)


def _write_dag(folder: Path, dag_id: str, body: str) -> Path:
    path = folder / f"{dag_id}.py"
    path.write_text(
        textwrap.dedent(
            f"""
            from datetime import datetime, timedelta

            from airflow.sdk import DAG

            from airflow_provider_clarity.operators.export import ClarityExportOperator

            with DAG("{dag_id}", schedule=None, start_date=datetime(2025, 1, 1), catchup=False):
            """
        )
        + textwrap.indent(textwrap.dedent(body), "    ")
    )
    return path


def charged(store: MemoryLedgerStore) -> int:
    """Calls the quota ledger counts against the project's 10 a day."""
    ledger = QuotaLedger(PROJECT, store=store)
    return ledger.capacity - ledger.remaining()
