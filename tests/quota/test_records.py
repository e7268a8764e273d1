"""The ledger document: what survives a round trip."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow_provider_clarity.quota.ledger import KEEP_IDLE_CALLS, KEEP_WAITING
from airflow_provider_clarity.windows.utc import utc_iso
from tests.quota.fixtures import spend


def test_waiting_survives_the_document_round_trip_and_old_waiters_leave(make, clock, store) -> None:
    ledger = make(daily_limit=1)
    spend(ledger, 1)
    make(caller="a/b/c/-1").wake_at(floor=timedelta(0), spacing=timedelta(0))
    assert list(store.data["waiting"]) == ["a/b/c/-1"]
    clock.advance(hours=49)
    spend(make(caller="other/x/y/-1"), 1)  # any write prunes what is older than it keeps
    assert store.data["waiting"] == {}


# ------------------------------------------------------------------ bounded documents


def _stored_call(number: int, at: datetime) -> dict[str, Any]:
    return {
        "id": f"call-{number:05d}",
        "at": utc_iso(at),
        "done_at": utc_iso(at + timedelta(seconds=1)),
        "caller": "etl/export/run1/-1",
        "outcome": "200",
        "request": "",
    }


def test_a_rolling_ledger_keeps_every_counting_call_and_only_the_newest_idle_ones(
    make, clock, store
) -> None:
    # A one-hour rolling window keeps calls 48 h; 3,000 calls from the last day no longer
    # count, 5 from the last hour do.
    start = clock.now - timedelta(hours=26)
    idle = [_stored_call(n, start + n * timedelta(seconds=30)) for n in range(3000)]
    counting = [_stored_call(10_000 + n, clock.now - timedelta(minutes=50 - n)) for n in range(5)]
    store.save({"version": 2, "project_id": "demo-project", "calls": idle + counting})
    ledger = make(window="rolling", rolling_window_seconds=3600, reset_margin_seconds=0)

    spend(ledger, 1)

    kept = [call["id"] for call in store.data["calls"]]
    assert len(kept) == KEEP_IDLE_CALLS + 6
    assert kept[:KEEP_IDLE_CALLS] == [call["id"] for call in idle[-KEEP_IDLE_CALLS:]]
    assert kept[KEEP_IDLE_CALLS:-1] == [call["id"] for call in counting]
    assert ledger.remaining() == 4, "pruning never frees a call that still counts"


def test_the_waiting_queue_keeps_the_newest_waiters(make, clock, store) -> None:
    since = [utc_iso(clock.now - timedelta(seconds=1500 - n)) for n in range(1500)]
    waiters = {f"d/t/run_{n:04d}/-1": at for n, at in enumerate(since)}
    store.save({"version": 2, "project_id": "demo-project", "calls": [], "waiting": waiters})
    ledger = make(daily_limit=1, caller="late/comer/run/-1")
    spend(make(daily_limit=1, caller="spender/t/r/-1"), 1)

    ledger.wake_at(floor=timedelta(0), spacing=timedelta(0))

    queue = store.data["waiting"]
    assert len(queue) == KEEP_WAITING
    assert "late/comer/run/-1" in queue and "d/t/run_1499/-1" in queue
    assert "d/t/run_0000/-1" not in queue


# ------------------------------------------------------------------ odd but readable records


def test_an_answer_stored_before_its_call_never_makes_the_call_count_less(make, clock, store):
    """10 calls today whose done_at says a month ago (an edit, a skewed clock) still count."""
    spend(make(), 10)
    document = store.data
    for call in document["calls"]:
        call["done_at"] = utc_iso(clock() - timedelta(days=30))
    store.data = document
    ledger = make()
    assert ledger.remaining() == 0
    assert len(ledger.records()) == 10


def test_a_record_without_an_outcome_reads_as_pending(make, store):
    spend(make(), 1)
    document = store.data
    del document["calls"][0]["outcome"]
    store.data = document
    [record] = make().records()
    assert record.outcome == "pending" and record.charged


def test_a_margin_too_large_for_a_float_is_refused_with_the_repair_message(store) -> None:
    import pytest

    from airflow_provider_clarity.exceptions import ClarityLedgerError
    from airflow_provider_clarity.quota.records import read_document

    document = {"version": 2, "project_id": "p", "calls": []}
    document["settings"] = {"reset_margin_seconds": 10**400}
    with pytest.raises(ClarityLedgerError, match="delete it to start counting from zero"):
        read_document(document, "clarity_quota__p")
