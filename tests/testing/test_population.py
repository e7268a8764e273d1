"""One population of sessions behind every answer: breakdowns agree like the live service's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_clarity.testing import ClarityEmulator
from tests.testing.fixtures import CLICK_FIELDS, METRIC_BLOCKS, PROJECT, FakeClock, block, dims, get

# ---------------------------------------------------------------------- one population of sessions
AT = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)


def keyed(rows: list[dict[str, Any]], *keys: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(row[k] for k in keys): row for row in rows}


def test_breakdowns_and_the_snapshot_agree_like_the_live_service() -> None:
    with ClarityEmulator(clock=FakeClock(AT), missing_fields=False) as emu:
        token = emu.issue_token(PROJECT)
        device = get(emu, token, **dims("Device")).json()
        pairs = get(emu, token, **dims("Device", "OS")).json()
        snapshot = get(emu, token).json()

    by_device = keyed(block(device, "Traffic"), "Device")
    summed: dict[Any, int] = {}
    for row in block(pairs, "Traffic"):
        summed[row["Device"]] = summed.get(row["Device"], 0) + int(row["totalSessionCount"])
    assert summed == {k[0]: int(r["totalSessionCount"]) for k, r in by_device.items()}
    total = int(block(snapshot, "Traffic")[0]["totalSessionCount"])
    assert sum(summed.values()) == total
    # The snapshot's Device block counts the human sessions the click blocks describe.
    human = {r["Device"]: r["sessionsCount"] for r in block(device, "DeadClickCount")}
    assert {r["name"]: r["sessionsCount"] for r in block(snapshot, "Device")} == human
    assert sum(int(r["sessionsCount"]) for r in block(snapshot, "Browser")) == sum(
        int(v) for v in human.values()
    )


def test_url_rows_count_sessions_per_page_so_they_add_up_to_more_than_the_total() -> None:
    with ClarityEmulator(clock=FakeClock(AT)) as emu:
        emu.configure_project(PROJECT, url_count=60)
        token = emu.issue_token(PROJECT)
        urls = block(get(emu, token, **dims("URL")).json(), "Traffic")
        total = int(block(get(emu, token).json(), "Traffic")[0]["totalSessionCount"])

    per_page = [int(r["totalSessionCount"]) for r in urls]
    assert all(n <= total for n in per_page)
    assert sum(per_page) > 1.5 * total


def test_two_calls_an_hour_apart_share_23_hours_of_sessions() -> None:
    clock = FakeClock(AT)
    with ClarityEmulator(clock=clock) as emu:
        token = emu.issue_token(PROJECT)
        first = emu.sessions(PROJECT)
        before = get(emu, token, **dims("Device")).json()
        clock.now += timedelta(minutes=20)  # the aggregate is recomputed hourly
        assert get(emu, token, **dims("Device")).json() == before
        clock.now += timedelta(minutes=40)
        second = emu.sessions(PROJECT)
        after = get(emu, token, **dims("Device")).json()

    shared = set(first.time.tolist()) & set(second.time.tolist())
    end = int(emu.window_end(AT).timestamp())
    assert min(shared) > end - 23 * 3600 and max(shared) <= end
    assert min(first.time) > end - 24 * 3600 and max(second.time) <= end + 3600
    assert before != after


def test_more_days_hold_the_shorter_windows_sessions() -> None:
    emu = ClarityEmulator(clock=FakeClock(AT))
    one, three = emu.sessions(PROJECT, num_of_days=1), emu.sessions(PROJECT, num_of_days=3)

    assert set(one.time.tolist()) <= set(three.time.tolist())
    assert 2.5 * len(one) < len(three) < 3.5 * len(one)


def test_sessions_follow_a_daily_curve() -> None:
    pop = ClarityEmulator(clock=FakeClock(AT)).sessions(PROJECT, num_of_days=3)
    hours = ((pop.time[~pop.bot] % 86400) // 3600).tolist()

    afternoon = sum(1 for h in hours if 13 <= h <= 17)
    night = sum(1 for h in hours if 1 <= h <= 5)
    assert afternoon > 3 * night


def test_distinct_users_do_not_add_up_and_can_exceed_sessions() -> None:
    with ClarityEmulator(clock=FakeClock(AT)) as emu:
        token = emu.issue_token(PROJECT)
        browsers = block(get(emu, token, **dims("Browser")).json(), "Traffic")
        snapshot = block(get(emu, token).json(), "Traffic")[0]

    users = sum(int(r["distinctUserCount"]) for r in browsers)
    assert users > int(snapshot["distinctUserCount"])  # returning users on two browsers
    pop = emu.sessions(PROJECT)
    assert len(set(pop.user[pop.recorded].tolist())) < int(pop.recorded.sum())


def test_traffic_lists_bot_only_groups_the_other_blocks_leave_out() -> None:
    payload = ClarityEmulator(clock=FakeClock(AT)).payload(PROJECT, dimensions=("OS",), at=AT)

    traffic = {r["Os"] for r in block(payload, "Traffic")}
    scroll = {r["Os"] for r in block(payload, "ScrollDepth")}
    assert None in traffic and None not in scroll
    assert scroll < traffic


def test_row_cap_can_apply_to_the_whole_response() -> None:
    with ClarityEmulator(clock=FakeClock(AT), row_cap_scope="response") as emu:
        emu.configure_project("per-block", row_cap_scope="block")
        whole = get(emu, emu.issue_token(PROJECT), **dims("URL")).json()
        per_block = get(emu, emu.issue_token("per-block"), **dims("URL")).json()

    assert [len(b["information"]) for b in whole] == [1000] + [0] * 8
    assert [len(b["information"]) for b in per_block] == [1000] * 9
    with pytest.raises(ValueError, match="row_cap_scope"):
        ClarityEmulator(row_cap_scope="page")  # type: ignore[arg-type]


def test_mobile_app_projects_use_the_app_names() -> None:
    emu = ClarityEmulator(clock=FakeClock(AT))
    emu.configure_project("app", mobile_app=True, url_count=30)

    broken_down = emu.payload("app", dimensions=("Device",))
    snapshot = emu.payload("app")

    names = [b["metricName"] for b in broken_down]
    assert names[:6] == [
        "DeadTapCount",
        "ExcessiveScroll",
        "RageTapCount",
        "QuickbackClick",
        "ApplicationErrorCount",
        "ErrorClickCount",
    ]
    assert "screensPerSessionPercentage" in block(broken_down, "Traffic")[0]
    assert all("screensViews" in r for r in block(broken_down, "DeadTapCount"))
    screens = block(snapshot, "PopularScreens")
    assert screens and all(set(r) == {"screenName", "visitsCount"} for r in screens)
    assert "PopularPages" not in [b["metricName"] for b in snapshot]


def test_snapshot_leaves_out_the_fields_the_live_capture_left_out() -> None:
    emu = ClarityEmulator(clock=FakeClock(AT))
    emu.configure_project("complete", missing_fields=False)

    sparse, complete = emu.payload(PROJECT), emu.payload("complete")

    assert set(block(sparse, "RageClickCount")[0]) == {
        "sessionsCount",
        "sessionsWithMetricPercentage",
        "subTotal",
    }
    assert "sessionsWithoutMetricPercentage" not in block(sparse, "ExcessiveScroll")[0]
    assert set(block(complete, "RageClickCount")[0]) == CLICK_FIELDS


def test_the_same_rows_miss_fields_on_every_call() -> None:
    clock = FakeClock(AT)
    emu = ClarityEmulator(clock=clock)
    first = emu.payload(PROJECT, dimensions=("Country", "Device"))
    clock.now += timedelta(days=1)
    later = emu.payload(PROJECT, dimensions=("Country", "Device"))

    def sparse(payload: list[dict[str, Any]]) -> set[Any]:
        return {
            (name, r["Country"], r["Device"])
            for name in METRIC_BLOCKS[:6]
            for r in block(payload, name)
            if not set(r) >= CLICK_FIELDS
        }

    assert sparse(first)
    assert sparse(first) == sparse(later)
