"""The ledger beside the real hook and the emulator: every call counted as Clarity counts it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from airflow_provider_clarity.exceptions import ClarityQuotaExceededError
from airflow_provider_clarity.quota import (
    QuotaLedger,
)

# ------------------------------------------------------------------ with the real hook and emulator


@pytest.fixture
def hook(clarity_connection: str) -> Any:
    from airflow_provider_clarity.hooks.clarity import ClarityHook

    return ClarityHook(clarity_connection, max_retries=1, retry_backoff=0)


def test_every_call_is_in_the_ledger_before_it_reaches_clarity(hook, clarity_emulator, store):
    ledger = QuotaLedger.for_hook(hook, store=store)
    seen_on_arrival: list[list[str]] = []
    real_clock = clarity_emulator._clock

    def clock_that_looks_at_the_ledger() -> datetime:
        seen_on_arrival.append([e["outcome"] for e in (store.data or {"calls": []})["calls"]])
        return real_clock()

    clarity_emulator._clock = clock_that_looks_at_the_ledger
    hook.get_live_insights(1, ["OS"], observer=ledger)
    hook.get_live_insights(1, observer=ledger)

    # The emulator reads its clock first thing when a request arrives (and again later).
    arrivals = [s for i, s in enumerate(seen_on_arrival) if i == 0 or s != seen_on_arrival[i - 1]]
    assert arrivals == [["pending"], ["200", "pending"]]
    assert [e["outcome"] for e in ledger.entries()] == ["200", "200"]
    assert [e["request"] for e in ledger.entries()] == [
        "numOfDays=1 dimensions=OS",
        "numOfDays=1 dimensions=none",
    ]
    assert clarity_emulator.calls("demo-project") == 2


def test_retries_and_failures_count_like_clarity_counts_them(hook, clarity_emulator, store):
    ledger = QuotaLedger.for_hook(hook, store=store)
    clarity_emulator.inject_fault("drop", count=1)
    hook.get_live_insights(1, ["Device"], observer=ledger)
    assert [e["outcome"] for e in ledger.entries()] == ["connection_error", "200"]
    assert ledger.remaining() == clarity_emulator.remaining("demo-project") == 8


def test_the_ledger_stops_the_eleventh_call_before_any_request(hook, clarity_emulator, store):
    ledger = QuotaLedger.for_hook(hook, store=store)
    for _ in range(10):
        hook.get_live_insights(1, observer=ledger)
    with pytest.raises(ClarityQuotaExceededError) as err:
        hook.get_live_insights(1, observer=ledger)
    assert err.value.source == "ledger"
    assert clarity_emulator.total_requests() == 10
    assert {r.status for r in clarity_emulator.requests} == {200}


def test_a_429_after_calls_outside_airflow_marks_the_project_spent(hook, clarity_emulator, store):
    ledger = QuotaLedger.for_hook(hook, store=store)
    hook.get_live_insights(1, observer=ledger)
    clarity_emulator.consume_quota("demo-project")  # someone used the rest in a browser
    with pytest.raises(ClarityQuotaExceededError) as err:
        hook.get_live_insights(1, observer=ledger)
    assert err.value.source == "api"
    assert ledger.remaining() == 0
    with pytest.raises(ClarityQuotaExceededError) as err:
        hook.get_live_insights(1, observer=ledger)
    assert err.value.source == "ledger"
    assert clarity_emulator.total_requests() == 2
