"""Who is calling, and the advice about the pool."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from airflow_provider_clarity.quota import (
    DEFAULT_POOL,
    OUTSIDE_AIRFLOW,
    QuotaLedger,
    caller_label,
    warn_if_unsafe_pool,
)
from airflow_provider_clarity.quota.context import split_caller_label
from airflow_provider_clarity.quota.lock import LockScope
from tests.quota.fixtures import spend


def test_caller_defaults_to_outside_airflow(clock, store):
    ledger = QuotaLedger("p", store=store, clock=clock)
    spend(ledger, 1)
    assert ledger.entries()[0]["caller"] == "outside-airflow"


def test_warn_if_unsafe_pool_only_where_the_ledger_would_refuse_the_task(caplog, tmp_path):
    @dataclass
    class Task:
        task_id: str
        pool: str

    one_host = LockScope(tmp_path, configured=False, executors=("LocalExecutor",))
    celery = LockScope(tmp_path, configured=False, executors=("CeleryExecutor",))
    shared = LockScope(tmp_path, configured=True, executors=("CeleryExecutor",))
    with caplog.at_level(logging.WARNING, logger="airflow_provider_clarity.quota"):
        assert warn_if_unsafe_pool(Task("ok", DEFAULT_POOL), scope=celery)
        assert warn_if_unsafe_pool(Task("locked", "default_pool"), scope=one_host)
        assert warn_if_unsafe_pool(Task("shared", "default_pool"), scope=shared)
        assert not caplog.records
        assert not warn_if_unsafe_pool(Task("racy", "default_pool"), scope=celery)
    assert "CeleryExecutor" in caplog.text and "ledger_lock_dir" in caplog.text
    assert "racy" in caplog.text


@pytest.mark.parametrize(
    ("run_id", "map_index"), [("manual__2026-03-04T12:00:00+00:00", None), ("a/b/c", 3)]
)
def test_a_caller_label_splits_back_into_its_task_instance(run_id: str, map_index: int | None):
    ti = SimpleNamespace(dag_id="dag", task_id="task", run_id=run_id, map_index=map_index)
    label = caller_label(ti)
    assert split_caller_label(label) == ("dag", "task", run_id, -1 if map_index is None else 3)
    assert split_caller_label(OUTSIDE_AIRFLOW) is None
    assert split_caller_label("someone/by/hand") is None
