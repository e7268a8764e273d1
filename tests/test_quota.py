"""The per-project quota ledger: windows, reserve, 429s, recording before sending, storage."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_clarity.exceptions import ClarityError, ClarityQuotaExceededError
from airflow_provider_clarity.hooks.clarity import ClarityRequest
from airflow_provider_clarity.quota import (
    DEFAULT_POOL,
    MemoryLedgerStore,
    QuotaLedger,
    QuotaSettings,
    Window,
    ledger_key,
    warn_if_unsafe_pool,
)

T0 = datetime(2025, 3, 14, 10, 0, 0, tzinfo=UTC)


class Clock:
    """A settable clock for the ledger."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def at(self, year: int, month: int, day: int, hour: int, minute: int, second: int) -> datetime:
        self.now = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class FakeHook:
    """The connection settings a ClarityHook exposes."""

    project_id: str = "demo-project"
    daily_limit: int = 10
    reserve: int = 0
    quota_window: str = "utc_day"
    rolling_window_seconds: int = 86400

    @property
    def quota_settings(self) -> QuotaSettings:
        return QuotaSettings(
            self.project_id,
            daily_limit=self.daily_limit,
            reserve=self.reserve,
            window=Window(self.quota_window),
            rolling_window_seconds=self.rolling_window_seconds,
        )


def os_request() -> ClarityRequest:
    return ClarityRequest.build(1, ["OS"])


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


def spend(ledger: QuotaLedger, n: int, outcome: str = "200") -> None:
    for _ in range(n):
        ledger.before_call(os_request())
        ledger.after_call(os_request(), outcome)


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


def test_usage_reports_who_spent_what(make, clock):
    morning = make(caller="sales/export_os/scheduled__2025-03-14/-1")
    spend(morning, 2)
    clock.advance(hours=1)
    spend(make(caller="marketing/export/manual__x/3"), 1, outcome="500")
    report = make(reserve=1).usage()
    assert report.splitlines()[0] == (
        "Clarity quota for project 'demo-project' (Variable clarity_quota__demo-project)"
    )
    assert "utc_day, resets 00:00 UTC (+60 s margin)" in report
    assert "limit:      10 calls, reserve 1 -> 9 for Airflow" in report
    assert "used:       3 in this window" in report
    assert "remaining:  6" in report
    assert "next call:  now" in report
    assert "  sales/export_os/scheduled__2025-03-14/-1: 2 call(s)" in report
    assert "    2025-03-14 10:00:00 UTC  200  numOfDays=1 dimensions=OS" in report
    assert "  marketing/export/manual__x/3: 1 call(s)" in report
    assert "    2025-03-14 11:00:00 UTC  500  numOfDays=1 dimensions=OS" in report

    clock.at(2025, 3, 15, 9, 0, 0)
    report = make().usage()
    assert "No calls in this window." in report
    assert "Earlier calls (kept 48 h), by caller:" in report


def test_usage_of_a_spent_project_shows_the_429_and_the_reset(make):
    ledger = make()
    spend(ledger, 1, outcome="429")
    report = ledger.usage()
    assert "remaining:  0" in report
    assert "exhausted:  Clarity answered 429; counted as spent until 2025-03-15 00:01:00 UTC" in (
        report
    )
    assert "next call:  2025-03-15 00:01:00 UTC" in report


def test_check_message_names_the_callers_and_the_reset(make):
    spend(make(caller="a/big_spender/r/-1"), 6)
    spend(make(caller="b/small/r/-1"), 3)
    ledger = make(caller="c/late/r/-1")
    ledger.check(1)
    with pytest.raises(ClarityQuotaExceededError) as err:
        ledger.check(2)
    message = str(err.value)
    assert "2 call(s) needed, 1 left" in message
    assert "9 of 10 calls available to Airflow are used in the current utc_day window" in message
    assert "a/big_spender/r/-1 (6), b/small/r/-1 (3)" in message
    assert "available again at 2025-03-15 00:01:00 UTC" in message
    assert "python -m airflow_provider_clarity.quota usage demo-project" in message


def test_caller_defaults_to_outside_airflow(clock, store):
    ledger = QuotaLedger("p", store=store, clock=clock)
    spend(ledger, 1)
    assert ledger.entries()[0]["caller"] == "outside-airflow"


def test_after_call_without_a_recorded_call_still_counts_it(make):
    ledger = make()
    ledger.after_call(os_request(), "200")
    assert ledger.remaining() == 9
    assert ledger.entries()[0]["outcome"] == "200"


def test_a_corrupt_ledger_is_an_error_not_a_fresh_count(make):
    ledger = make(store=MemoryLedgerStore({"calls": [{"at": "yesterday"}]}))
    with pytest.raises(ClarityError, match="delete it to start counting from zero"):
        ledger.remaining()


def test_ledger_keys_are_documented_and_safe():
    assert ledger_key("demo-project") == "clarity_quota__demo-project"
    assert QuotaLedger("demo-project").key == "clarity_quota__demo-project"
    odd = ledger_key("team a/prod")
    assert odd.startswith("clarity_quota__team_a_prod_")
    assert odd != ledger_key("team_a_prod")
    assert odd != ledger_key("team a_prod")


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


# ------------------------------------------------------------------ real Airflow Variables

_DAG_FILE = """
from datetime import datetime

from airflow.sdk import DAG, Variable, task

from airflow_provider_clarity import quota


with DAG("clarity_quota_roundtrip", schedule=None, start_date=datetime(2025, 1, 1)):

    @task
    def record():
        assert quota.in_task(), "expected the Task SDK's Variable path"
        ledger = quota.QuotaLedger("dag-test-project", daily_limit=5)
        ledger.before_call(None)
        stored = Variable.get("clarity_quota__dag-test-project", deserialize_json=True)
        assert [c["outcome"] for c in stored["calls"]] == ["pending"], stored
        ledger.after_call(None, "200")
        assert quota.QuotaLedger("dag-test-project", daily_limit=5).remaining() == 4

    record()
"""


def test_the_ledger_round_trips_through_airflow_variables_in_a_task(airflow_db: Path):
    from airflow.models.variable import Variable

    from airflow_provider_clarity.version_compat import DagBag
    from tests.conftest import DAGS_FOLDER

    # dag.test() only runs DAGs that the dags-folder bundle can find.
    dag_file = DAGS_FOLDER / "clarity_quota_roundtrip.py"
    dag_file.write_text(_DAG_FILE)
    try:
        bag = DagBag(dag_folder=str(dag_file))
        assert not bag.import_errors, bag.import_errors
        dag_run = bag.get_dag("clarity_quota_roundtrip").test()
    finally:
        dag_file.unlink()
    assert dag_run.state == "success"

    stored = Variable.get("clarity_quota__dag-test-project", deserialize_json=True)
    assert len(stored["calls"]) == 1
    call = stored["calls"][0]
    assert call["outcome"] == "200"
    assert call["caller"] == f"clarity_quota_roundtrip/record/{dag_run.run_id}/-1"
    assert stored["settings"]["daily_limit"] == 5
    # Outside a task the same ledger reads the metadata DB.
    assert QuotaLedger("dag-test-project", daily_limit=5).remaining() == 4


def test_usage_command_reads_the_variable_outside_any_task(airflow_db: Path, monkeypatch, capsys):
    from airflow.configuration import conf
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    from airflow_provider_clarity import quota

    now = datetime.now(UTC)
    document = {
        "version": 1,
        "project_id": "cli-project",
        "settings": {"daily_limit": 10, "reserve": 1, "window": "utc_day"},
        "exhausted_until": None,
        "calls": [
            {
                "id": "a1",
                "at": now.isoformat(),
                "done_at": now.isoformat(),
                "caller": "nightly/export/run_1/-1",
                "outcome": "200",
                "request": "numOfDays=1 dimensions=OS",
            }
        ],
    }
    # Subprocesses must encrypt and decrypt with this process's Fernet key.
    env = {**os.environ, "AIRFLOW__CORE__FERNET_KEY": conf.get("core", "fernet_key")}
    airflow_bin = str(Path(sys.executable).parent / "airflow")
    subprocess.run(
        [airflow_bin, "variables", "set", ledger_key("cli-project"), json.dumps(document)],
        check=True,
        capture_output=True,
        env=env,
    )
    with create_session() as session:
        session.add(
            Connection(
                conn_id="clarity_cli",
                conn_type="clarity",
                password="not-a-real-token",
                extra=json.dumps({"project_id": "cli-project", "reserve": 2}),
            )
        )

    # By connection id, in a fresh process: the connection and Variable live in the DB only.
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_clarity.quota", "usage", "clarity_cli"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert "Clarity quota for project 'cli-project'" in result.stdout
    assert "limit:      10 calls, reserve 2 -> 8 for Airflow" in result.stdout
    assert "remaining:  7" in result.stdout
    assert "nightly/export/run_1/-1: 1 call(s)" in result.stdout
    assert "(resolved 'clarity_cli' as connection 'clarity_cli')" in result.stdout
    assert "not-a-real-token" not in result.stdout + result.stderr

    # By project id (no such connection): the settings the last task stored are used.
    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")
    assert quota.main(["usage", "cli-project"]) == 0
    out = capsys.readouterr().out
    assert "reserve 1 -> 9 for Airflow" in out
    assert "remaining:  8" in out
    assert "settings stored by the last task" in out


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


def test_waiting_survives_the_document_round_trip_and_old_waiters_leave(make, clock, store) -> None:
    ledger = make(daily_limit=1)
    spend(ledger, 1)
    make(caller="a/b/c/-1").wake_at(floor=timedelta(0), spacing=timedelta(0))
    assert list(store.data["waiting"]) == ["a/b/c/-1"]
    clock.advance(hours=49)
    spend(make(caller="other/x/y/-1"), 1)  # any write prunes what is older than it keeps
    assert store.data["waiting"] == {}
