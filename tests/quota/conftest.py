"""Fixtures of the quota tests: a clock, a memory store, a ledger factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_clarity.quota import (
    MemoryLedgerStore,
    QuotaLedger,
)
from tests.quota.fixtures import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> MemoryLedgerStore:
    return MemoryLedgerStore()


@pytest.fixture
def make(clock: Clock, store: MemoryLedgerStore) -> Callable[..., QuotaLedger]:
    def _make(**kwargs: Any) -> QuotaLedger:
        kwargs.setdefault("store", store)
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("caller", "etl/export/run1/-1")
        return QuotaLedger(kwargs.pop("project_id", "demo-project"), **kwargs)

    return _make
