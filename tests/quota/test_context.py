"""Who is calling, and the advice about the pool."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from airflow_provider_clarity.quota import (
    DEFAULT_POOL,
    QuotaLedger,
    warn_if_unsafe_pool,
)
from tests.quota.fixtures import spend


def test_caller_defaults_to_outside_airflow(clock, store):
    ledger = QuotaLedger("p", store=store, clock=clock)
    spend(ledger, 1)
    assert ledger.entries()[0]["caller"] == "outside-airflow"


def test_warn_if_unsafe_pool(caplog):
    @dataclass
    class Task:
        task_id: str
        pool: str

    with caplog.at_level(logging.WARNING, logger="airflow_provider_clarity.quota"):
        assert warn_if_unsafe_pool(Task("ok", DEFAULT_POOL))
        assert not caplog.records
        assert not warn_if_unsafe_pool(Task("racy", "default_pool"))
    assert "airflow pools set clarity_api 1" in caplog.text
    assert "racy" in caplog.text
