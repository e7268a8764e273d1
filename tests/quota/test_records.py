"""The ledger document: what survives a round trip."""

from __future__ import annotations

from datetime import timedelta

from tests.quota.fixtures import spend


def test_waiting_survives_the_document_round_trip_and_old_waiters_leave(make, clock, store) -> None:
    ledger = make(daily_limit=1)
    spend(ledger, 1)
    make(caller="a/b/c/-1").wake_at(floor=timedelta(0), spacing=timedelta(0))
    assert list(store.data["waiting"]) == ["a/b/c/-1"]
    clock.advance(hours=49)
    spend(make(caller="other/x/y/-1"), 1)  # any write prunes what is older than it keeps
    assert store.data["waiting"] == {}
