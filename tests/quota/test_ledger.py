"""The per-project quota ledger: windows, reserve, 429s, recording before sending, storage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_clarity.exceptions import ClarityError, ClarityQuotaExceededError
from airflow_provider_clarity.quota import (
    MemoryLedgerStore,
    QuotaLedger,
    Window,
)
from airflow_provider_clarity.quota.records import CallRecord, LedgerState
from tests.quota.fixtures import T0, FakeHook, os_request, spend

# ------------------------------------------------------------------ utc_day window


def test_utc_day_resets_exactly_at_midnight_without_margin(make, clock):
    ledger = make(reset_margin_seconds=0)
    spend(ledger, 10)
    assert ledger.remaining() == 0

    clock.at(2025, 3, 14, 23, 59, 59)
    assert ledger.remaining() == 0
    midnight = datetime(2025, 3, 15, tzinfo=UTC)
    assert ledger.next_reset() == midnight
    with pytest.raises(ClarityQuotaExceededError) as err:
        ledger.check()
    assert err.value.source == "ledger"
    assert err.value.reset_at == midnight

    clock.at(2025, 3, 15, 0, 0, 0)
    assert ledger.remaining() == 10
    assert ledger.next_reset() == clock.now  # available now
    ledger.check(10)


def test_utc_day_waits_a_margin_after_midnight_and_counts_calls_that_straddle_it(make, clock):
    ledger = make()  # default margin: 60 s for utc_day
    spend(ledger, 8)
    clock.at(2025, 3, 14, 23, 58, 0)
    spend(ledger, 1)
    clock.at(2025, 3, 14, 23, 59, 30)
    spend(ledger, 1)  # may reach Clarity after midnight: it counts for the new day too
    assert ledger.remaining() == 0
    assert ledger.next_reset() == datetime(2025, 3, 15, 0, 1, 0, tzinfo=UTC)

    clock.at(2025, 3, 15, 0, 0, 30)
    assert ledger.remaining() == 0, "Clarity's clock may still be on the old day"
    clock.at(2025, 3, 15, 0, 1, 0)
    assert ledger.remaining() == 9


def test_utc_day_next_reset_for_more_calls_than_a_straddling_call_leaves(make, clock):
    ledger = make(daily_limit=3, reset_margin_seconds=60)
    clock.at(2025, 3, 14, 23, 59, 50)
    spend(ledger, 3)
    # At 00:01 the three straddling calls still count; only the day after frees them.
    assert ledger.next_reset(1) == datetime(2025, 3, 16, 0, 1, tzinfo=UTC)


# ------------------------------------------------------------------ rolling window


def test_rolling_call_expires_exactly_one_window_after_it_finished(make, clock):
    ledger = make(window="rolling", rolling_window_seconds=60, reset_margin_seconds=0)
    ledger.before_call(os_request())
    clock.advance(seconds=2)
    ledger.after_call(os_request(), "200")  # Clarity saw it somewhere in these 2 seconds
    clock.advance(seconds=10)
    spend(ledger, 9)
    expiry = T0 + timedelta(seconds=62)
    assert ledger.remaining() == 0
    assert ledger.next_reset() == expiry

    clock.now = expiry - timedelta(microseconds=1)
    assert ledger.remaining() == 0
    clock.now = expiry
    assert ledger.remaining() == 1


def test_rolling_default_margin_and_next_reset_for_several_calls(make, clock):
    ledger = make(window="rolling", rolling_window_seconds=60)  # margin 5 s
    for _ in range(10):
        spend(ledger, 1)
        clock.advance(seconds=1)
    # calls finished at T0+0..9 s; each frees at +60 +5 s
    assert ledger.remaining() == 0
    assert ledger.next_reset() == T0 + timedelta(seconds=65)
    assert ledger.next_reset(3) == T0 + timedelta(seconds=67)
    clock.now = T0 + timedelta(seconds=67)
    assert ledger.remaining() == 3


def test_pending_call_of_a_dead_worker_keeps_counting(make, clock, store):
    ledger = make(window="rolling", rolling_window_seconds=60, reset_margin_seconds=5)
    ledger.before_call(os_request())  # the worker dies here: no after_call
    other_worker = make(
        caller="other/task/run/-1",
        window="rolling",
        rolling_window_seconds=60,
        reset_margin_seconds=5,
    )
    assert other_worker.remaining() == 9
    assert other_worker.entries()[0]["outcome"] == "pending"
    clock.advance(seconds=64)
    assert other_worker.remaining() == 9
    clock.advance(seconds=1)
    assert other_worker.remaining() == 10


# ------------------------------------------------------------------ reserve


def test_reserve_from_the_connection_and_a_task_override(clock, store):
    hook = FakeHook(reserve=2)
    conn_level = QuotaLedger.for_hook(hook, store=store, clock=clock, caller="a/b/c/-1")
    assert conn_level.capacity == 8
    spend(conn_level, 8)
    assert conn_level.remaining() == 0
    with pytest.raises(ClarityQuotaExceededError, match="reserve 2"):
        conn_level.before_call(os_request())
    assert len(store.data["calls"]) == 8, "a refused call is not recorded"

    task_level = QuotaLedger.for_hook(hook, reserve=0, store=store, clock=clock)
    assert task_level.remaining() == 2
    stricter = QuotaLedger.for_hook(hook, reserve=9, store=store, clock=clock)
    assert stricter.remaining() == 0


def test_reserve_that_leaves_nothing_says_waiting_never_helps(make):
    ledger = make(daily_limit=10, reserve=10)
    with pytest.raises(ClarityQuotaExceededError) as err:
        ledger.check()
    assert err.value.reset_at is None
    assert "can never be available" in str(err.value)
    with pytest.raises(ValueError, match="can never be available"):
        ledger.next_reset()


# ------------------------------------------------------------------ 429


def test_429_marks_the_project_spent_until_the_next_utc_reset(make, clock):
    ledger = make()
    spend(ledger, 3)
    ledger.before_call(os_request())
    ledger.after_call(os_request(), "429")  # people outside Airflow spent the rest
    assert ledger.remaining() == 0
    reset = datetime(2025, 3, 15, 0, 1, tzinfo=UTC)
    assert ledger.next_reset() == reset
    with pytest.raises(ClarityQuotaExceededError, match="429") as err:
        ledger.before_call(os_request())
    assert err.value.reset_at == reset
    assert [e["outcome"] for e in ledger.entries()] == ["200", "200", "200", "429"]

    clock.now = reset
    assert ledger.remaining() == 10


def test_429_in_a_rolling_window_waits_a_whole_window_from_the_429(make, clock):
    ledger = make(window="rolling", rolling_window_seconds=600, reset_margin_seconds=5)
    spend(ledger, 1)
    clock.advance(seconds=300)
    spend(ledger, 1, outcome="429")
    # The ledger's own first call frees at T0+605 s, but invisible calls may be as recent as
    # the 429: only T0+300+600+5 s is certain.
    assert ledger.next_reset() == T0 + timedelta(seconds=905)
    clock.now = T0 + timedelta(seconds=904)
    assert ledger.remaining() == 0
    clock.now = T0 + timedelta(seconds=905)
    assert ledger.remaining() == 10  # the 429 attempt itself counted until now


# ------------------------------------------------------------------ pruning, reports, errors


def test_entries_older_than_48_hours_are_pruned_on_the_next_write(make, clock, store):
    ledger = make()
    spend(ledger, 2)
    clock.advance(hours=47)
    spend(ledger, 1)
    assert len(store.data["calls"]) == 3
    clock.advance(hours=1, seconds=1)
    spend(ledger, 1)
    assert [e["at"] for e in store.data["calls"]] == [
        (T0 + timedelta(hours=47)).isoformat(),
        (T0 + timedelta(hours=48, seconds=1)).isoformat(),
    ]


def test_a_long_rolling_window_keeps_its_calls_longer_than_48_hours(make, clock, store):
    ledger = make(window="rolling", rolling_window_seconds=3 * 86400, reset_margin_seconds=0)
    spend(ledger, 1)
    clock.advance(hours=60)
    spend(ledger, 1)
    assert len(store.data["calls"]) == 2
    assert ledger.remaining() == 8


def test_after_call_without_a_recorded_call_still_counts_it(make):
    ledger = make()
    ledger.after_call(os_request(), "200")
    assert ledger.remaining() == 9
    assert ledger.entries()[0]["outcome"] == "200"


def test_a_corrupt_ledger_is_an_error_not_a_fresh_count(make):
    ledger = make(store=MemoryLedgerStore({"calls": [{"at": "yesterday"}]}))
    with pytest.raises(ClarityError, match="delete it to start counting from zero"):
        ledger.remaining()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": "weekly"}, "Unknown quota window"),
        ({"reserve": -1}, "reserve"),
        ({"daily_limit": 0}, "daily_limit"),
    ],
)
def test_nonsense_settings_are_refused(kwargs: dict[str, Any], message: str):
    with pytest.raises(ValueError, match=message):
        QuotaLedger("p", **kwargs)


def test_auth_refusals_stop_counting_once_known_but_pending_and_5xx_still_count(make):
    ledger = make()
    spend(ledger, 2, outcome="401")
    spend(ledger, 1, outcome="403")
    assert ledger.remaining() == 10  # Clarity cannot charge a project for these
    spend(ledger, 1, outcome="500")
    ledger.before_call(os_request())  # in flight: counts until its outcome is known
    assert ledger.remaining() == 8
    assert [e["outcome"] for e in ledger.entries()] == ["401", "401", "403", "500", "pending"]


# ------------------------------------------------------------------ waiting in turn


def test_waiters_are_woken_in_turn_not_all_at_once(make, clock) -> None:
    floor, spacing = timedelta(seconds=30), timedelta(seconds=30)
    spender = make(window="rolling", rolling_window_seconds=600, daily_limit=2, caller="x/a/r/-1")
    spend(spender, 1)  # at T0
    clock.advance(seconds=100)
    spend(spender, 1)  # at T0 + 100 s: the window is full
    first, second, third = (
        make(window="rolling", rolling_window_seconds=600, daily_limit=2, caller=f"d/t{i}/r/-1")
        for i in range(3)
    )
    # The first waiter gets the first freed call, the second the next one; the third, beyond
    # the project's two calls, comes one spacing after the second.
    wake_first = first.wake_at(floor=floor, spacing=spacing)
    wake_second = second.wake_at(floor=floor, spacing=spacing)
    wake_third = third.wake_at(floor=floor, spacing=spacing)
    assert wake_first == T0 + timedelta(seconds=600 + 5)  # rolling margin 5 s
    assert wake_second == T0 + timedelta(seconds=100 + 600 + 5)
    assert wake_third == wake_second + spacing
    # Asking again keeps one's place in the queue.
    assert second.wake_at(floor=floor, spacing=spacing) == wake_second
    # A waiter that gets its call leaves the queue and the others move up: the third is now
    # second in line and wakes when two calls are free again, the second of them being the
    # one the first waiter just took.
    clock.now = wake_first
    spend(first, 1)
    assert third.wake_at(floor=floor, spacing=spacing) == wake_first + timedelta(seconds=605)
    assert second.wake_at(floor=floor, spacing=spacing) == wake_second


def test_a_wait_is_never_shorter_than_the_floor(make, clock) -> None:
    ledger = make(window="rolling", rolling_window_seconds=60, daily_limit=1)
    spend(ledger, 1)
    clock.advance(seconds=60)  # the call leaves the window 5 s from now
    wake = ledger.wake_at(floor=timedelta(seconds=30), spacing=timedelta(seconds=30))
    assert ledger.next_reset() == clock.now + timedelta(seconds=5)
    assert wake == clock.now + timedelta(seconds=30)


# ------------------------------------------------------------------ the arithmetic, checked
# against the quadratic search it replaced (try every moment availability may change at, in
# order, recounting the whole window each time), on random small ledgers.

_OUTCOMES = ["200", "pending", "500", "429", "401", "403", "timeout", "dns_error"]
_seconds = st.integers(min_value=-3 * 86400, max_value=86400)


@st.composite
def _ledgers(draw: st.DrawFn) -> tuple[QuotaLedger, LedgerState, int]:
    ledger = QuotaLedger(
        "demo-project",
        daily_limit=draw(st.integers(1, 5)),
        reserve=draw(st.integers(0, 2)),
        window=draw(st.sampled_from(["rolling", "utc_day"])),
        rolling_window_seconds=draw(st.sampled_from([1, 60, 3600, 86400, 2 * 86400])),
        reset_margin_seconds=draw(st.sampled_from([0, 0.5, 5, 60])),
        store=MemoryLedgerStore(),
        clock=lambda: T0,
    )
    calls = [
        CallRecord(
            at=T0 + timedelta(seconds=at),
            done_at=None if took is None else T0 + timedelta(seconds=at + took),
            outcome=outcome,
            caller="c",
        )
        for at, took, outcome in draw(
            st.lists(
                st.tuples(_seconds, st.none() | st.integers(0, 600), st.sampled_from(_OUTCOMES)),
                max_size=12,
            )
        )
    ]
    mark = st.none() | _seconds.map(lambda s: T0 + timedelta(seconds=s))
    marks = draw(st.tuples(mark, mark))
    return ledger, LedgerState(sorted(calls, key=lambda r: r.at), *marks), draw(st.integers(1, 6))


def _reference_available(ledger: QuotaLedger, state: LedgerState, moment: datetime) -> int:
    marks = (state.exhausted_until, state.degraded_until)
    if any(mark is not None and moment < mark for mark in marks):
        return 0
    rules = ledger.settings
    used = sum(
        r.charged and rules.counts_at(r.last_seen + rules.margin, moment) for r in state.calls
    )
    return max(0, ledger.capacity - used)


def _reference_next_reset(ledger: QuotaLedger, state: LedgerState, calls: int) -> datetime | None:
    rules, now = ledger.settings, T0
    if calls > ledger.capacity:
        return None
    if _reference_available(ledger, state, now) >= calls:
        return now
    candidates = {m for m in (state.exhausted_until, state.degraded_until) if m is not None}
    if rules.window is Window.ROLLING:
        candidates.update(r.last_seen + rules.margin + rules.window_length for r in state.calls)
    else:
        first = rules.next_day_start(now)
        candidates.update({first, rules.next_day_start(first)})
    for moment in sorted(c for c in candidates if c > now):
        if _reference_available(ledger, state, moment) >= calls:
            return moment
    return None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_ledgers())
def test_next_reset_and_status_agree_with_a_brute_force_search(
    case: tuple[QuotaLedger, LedgerState, int],
) -> None:
    ledger, state, calls = case

    assert ledger._next_reset(state, T0, calls) == _reference_next_reset(ledger, state, calls)
    status = ledger._status(state, T0)
    assert status.remaining == _reference_available(ledger, state, T0)
    assert status.next_reset == _reference_next_reset(ledger, state, 1)
    assert [r.id for r in status.counted] == [r.id for r in state.calls if ledger._counts_at(r, T0)]
