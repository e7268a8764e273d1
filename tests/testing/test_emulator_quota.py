"""The emulator's quota and faults: 429 after the limit, resets, injected failures."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
import requests

from airflow_provider_clarity.testing import ClarityEmulator
from tests.testing.fixtures import PROJECT, FakeClock, dims, get


# ---------------------------------------------------------------------- quota
def test_utc_day_quota_gives_429_after_the_limit_and_resets_at_midnight() -> None:
    clock = FakeClock(datetime(2025, 6, 30, 23, 59, 59, tzinfo=UTC))
    with ClarityEmulator(clock=clock) as emu:
        token = emu.issue_token(PROJECT)
        statuses = [get(emu, token).status_code for _ in range(10)]
        refused = get(emu, token)

        assert statuses == [200] * 10
        assert refused.status_code == 429
        assert b"Exceeded daily limit" in refused.content
        assert "Retry-After" not in refused.headers
        assert emu.calls(PROJECT) == 10  # the 429 itself is free
        assert emu.total_requests(PROJECT) == 11

        clock.now = datetime(2025, 7, 1, 0, 0, 0, tzinfo=UTC)
        assert emu.calls(PROJECT) == 0
        assert get(emu, token).status_code == 200
        assert emu.calls(PROJECT) == 1


def test_rolling_quota_frees_a_call_when_the_oldest_leaves_the_window() -> None:
    clock = FakeClock(datetime(2025, 6, 30, 23, 59, 59, tzinfo=UTC))
    with ClarityEmulator(
        clock=clock, window="rolling", rolling_window_seconds=3600, daily_limit=2
    ) as emu:
        token = emu.issue_token(PROJECT)
        assert get(emu, token).status_code == 200
        clock.now += timedelta(seconds=1)  # 00:00:00: no reset in rolling mode
        assert get(emu, token).status_code == 200
        assert get(emu, token).status_code == 429

        clock.now = datetime(2025, 7, 1, 0, 59, 58, tzinfo=UTC)
        assert get(emu, token).status_code == 429
        clock.now = datetime(2025, 7, 1, 0, 59, 59, tzinfo=UTC)  # first call is an hour old
        assert get(emu, token).status_code == 200
        assert get(emu, token).status_code == 429


def test_quota_is_per_project_and_shared_by_its_tokens() -> None:
    with ClarityEmulator(daily_limit=2) as emu:
        first, second = emu.issue_token(PROJECT), emu.issue_token(PROJECT)
        assert get(emu, first).status_code == 200
        assert get(emu, second).status_code == 200
        assert get(emu, first).status_code == 429
        assert get(emu, emu.issue_token("other")).status_code == 200


def test_per_project_daily_limit_and_consume_quota(emulator: ClarityEmulator) -> None:
    emulator.configure_project("tight", daily_limit=1)
    emulator.consume_quota(PROJECT)

    assert get(emulator, emulator.issue_token(PROJECT)).status_code == 429
    assert get(emulator, emulator.issue_token("tight")).status_code == 200
    assert get(emulator, emulator.issue_token("tight")).status_code == 429
    assert emulator.remaining("tight") == 0


def test_concurrent_calls_never_overshoot_the_limit(emulator: ClarityEmulator, token: str) -> None:
    statuses: list[int] = []

    def call() -> None:
        statuses.append(get(emulator, token, **dims("Device")).status_code)

    threads = [threading.Thread(target=call) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(statuses) == [200] * 10 + [429] * 6
    assert emulator.calls(PROJECT) == 10


@pytest.mark.parametrize("count_failed", [True, False])
def test_count_failed_calls_decides_whether_400_and_500_cost_a_call(count_failed: bool) -> None:
    with ClarityEmulator(count_failed_calls=count_failed) as emu:
        token = emu.issue_token(PROJECT)
        assert get(emu, token, numOfDays="9").status_code == 400
        emu.inject_fault("server_error")
        assert get(emu, token).status_code == 500
        assert get(emu, token).status_code == 200

        assert emu.calls(PROJECT) == (3 if count_failed else 1)
        assert [r.counted for r in emu.requests] == [count_failed, count_failed, True]


# ---------------------------------------------------------------------- faults
def test_server_error_fault_hits_the_next_n_calls_only(
    emulator: ClarityEmulator, token: str
) -> None:
    emulator.inject_fault("server_error", count=2)

    responses = [get(emulator, token) for _ in range(3)]

    assert [r.status_code for r in responses] == [500, 500, 200]
    assert responses[0].content == b""
    assert [r.fault for r in emulator.requests] == ["server_error", "server_error", None]


@pytest.mark.parametrize("how", ["permanent", "count"])
def test_permanent_server_error_lasts_until_cleared(
    emulator: ClarityEmulator, token: str, how: str
) -> None:
    if how == "permanent":
        emulator.inject_fault("server_error", permanent=True)
    else:
        emulator.inject_fault("server_error", count=-1)

    assert [get(emulator, token).status_code for _ in range(5)] == [500] * 5
    emulator.clear_faults()
    assert get(emulator, token).status_code == 200


def test_slow_fault_outlasts_a_short_client_timeout(emulator: ClarityEmulator, token: str) -> None:
    emulator.inject_fault("slow", delay=0.5)

    with pytest.raises(requests.exceptions.ReadTimeout):
        get(emulator, token, timeout=0.1)


def test_slow_fault_that_answers_counts_as_a_call() -> None:
    with ClarityEmulator(count_failed_calls=False) as emu:
        emu.inject_fault("slow", delay=0.2)
        response = get(emu, emu.issue_token(PROJECT))

        assert response.status_code == 200
        assert len(response.json()) == 16
        assert emu.calls(PROJECT) == 1


def test_stop_does_not_wait_for_a_slow_answer() -> None:
    emu = ClarityEmulator().start()
    token = emu.issue_token(PROJECT)
    emu.inject_fault("slow", delay=120)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            get(emu, token, timeout=120)
        except requests.RequestException as err:
            errors.append(err)

    caller = threading.Thread(target=call)
    caller.start()
    while emu.in_flight == 0 and caller.is_alive():
        threading.Event().wait(0.01)
    emu.stop()
    caller.join(timeout=10)

    assert not caller.is_alive()
    assert errors and isinstance(errors[0], requests.ConnectionError)


@pytest.mark.parametrize("count_failed", [True, False])
def test_drop_fault_closes_the_connection_without_answer(count_failed: bool) -> None:
    with ClarityEmulator(count_failed_calls=count_failed) as emu:
        token = emu.issue_token(PROJECT)
        emu.inject_fault("drop")

        with pytest.raises(requests.ConnectionError):
            get(emu, token)
        assert get(emu, token).status_code == 200

        assert emu.requests[0].status is None
        assert emu.calls(PROJECT) == (2 if count_failed else 1)


def test_truncated_fault_sends_a_200_with_cut_json(emulator: ClarityEmulator, token: str) -> None:
    emulator.inject_fault("truncated")

    response = get(emulator, token, **dims("OS"))

    assert response.status_code == 200
    assert response.text.startswith('[{"metricName":"DeadClickCount"')
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)
    assert emulator.calls(PROJECT) == 1


def test_faults_do_not_fire_on_refused_calls(emulator: ClarityEmulator, token: str) -> None:
    emulator.inject_fault("server_error")

    assert get(emulator, None).status_code == 401
    assert get(emulator, token).status_code == 500
