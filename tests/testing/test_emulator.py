"""The Clarity emulator, exercised over real HTTP on 127.0.0.1 like a client would."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from airflow_provider_clarity.testing import ClarityEmulator

METRIC_BLOCKS = [
    "DeadClickCount",
    "ExcessiveScroll",
    "RageClickCount",
    "QuickbackClick",
    "ScriptErrorCount",
    "ErrorClickCount",
    "ScrollDepth",
    "Traffic",
    "EngagementTime",
]
SNAPSHOT_BLOCKS = ["Browser", "Device", "OS", "Country", "PageTitle", "ReferrerUrl", "PopularPages"]
CLICK_FIELDS = {
    "sessionsCount",
    "sessionsWithMetricPercentage",
    "sessionsWithoutMetricPercentage",
    "pagesViews",
    "subTotal",
}
COUNT_FIELDS = {
    "totalSessionCount",
    "totalBotSessionCount",
    "distinctUserCount",
    "distantUserCount",
    "totalTime",
    "activeTime",
    "sessionsCount",
    "pagesViews",
    "subTotal",
    "visitsCount",
}
PERCENT_FIELDS = {
    "pagesPerSessionPercentage",
    "PagesPerSessionPercentage",
    "averageScrollDepth",
    "sessionsWithMetricPercentage",
    "sessionsWithoutMetricPercentage",
}
PROJECT = "demo-project"


class FakeClock:
    """A settable clock for the emulator's quota window and token expiry."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def get(
    emulator: ClarityEmulator,
    token: str | None,
    *,
    timeout: float = 10,
    **params: Any,
) -> requests.Response:
    """One GET of the live-insights endpoint, as the vendor's Python sample makes it."""
    headers = {"Content-type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    params.setdefault("numOfDays", "1")
    return requests.get(emulator.endpoint_url, params=params, headers=headers, timeout=timeout)


def dims(*names: str) -> dict[str, Any]:
    return {f"dimension{i}": name for i, name in enumerate(names, start=1)}


def block(payload: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return next(b["information"] for b in payload if b["metricName"] == name)


@pytest.fixture
def emulator() -> Iterator[ClarityEmulator]:
    with ClarityEmulator(seed=1) as emu:
        yield emu


@pytest.fixture
def token(emulator: ClarityEmulator) -> str:
    return emulator.issue_token(PROJECT)


# ---------------------------------------------------------------------- response shape
def test_without_dimensions_the_snapshot_has_16_blocks_in_order(
    emulator: ClarityEmulator, token: str
) -> None:
    response = get(emulator, token)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    payload = response.json()
    assert [b["metricName"] for b in payload] == METRIC_BLOCKS + SNAPSHOT_BLOCKS
    traffic = block(payload, "Traffic")
    assert len(traffic) == 1
    assert set(traffic[0]) == {
        "totalSessionCount",
        "totalBotSessionCount",
        "distinctUserCount",
        "pagesPerSessionPercentage",
    }
    assert {row["name"] for row in block(payload, "Device")} == {"PC", "Mobile", "Tablet", "Other"}
    referrers = block(payload, "ReferrerUrl")
    assert referrers[0]["name"] == "None"  # direct traffic, the string, not null
    assert None in {row["name"] for row in block(payload, "Country")}
    for name in ("Browser", "Device", "OS", "Country", "PageTitle", "ReferrerUrl"):
        assert all(set(row) == {"name", "sessionsCount"} for row in block(payload, name))
    pages = block(payload, "PopularPages")
    assert all(set(row) == {"url", "visitsCount"} for row in pages)
    urls = [row["url"] for row in pages]
    assert any("utm_source=" in u for u in urls)
    assert any("fbclid=" in u for u in urls)
    assert any(len(u) > 800 for u in urls)


def test_one_dimension_gives_9_blocks_with_os_rows_keyed_os(
    emulator: ClarityEmulator, token: str
) -> None:
    payload = get(emulator, token, **dims("OS")).json()

    assert [b["metricName"] for b in payload] == METRIC_BLOCKS
    for b in payload:
        assert b["information"], b["metricName"]
        assert all("Os" in row and "OS" not in row for row in b["information"])
    traffic = block(payload, "Traffic")
    assert {"Windows", "Android", "iOS"} <= {row["Os"] for row in traffic}
    assert any(row["Os"] is None for row in traffic)  # the unattributed bucket
    lengths = {b["metricName"]: len(b["information"]) for b in payload}
    assert lengths["Traffic"] > min(lengths.values())


def test_os_key_can_be_the_vendor_spelling(token: str) -> None:
    with ClarityEmulator(os_key="OS") as emu:
        payload = get(emu, emu.issue_token("p"), **dims("OS")).json()
    assert all("OS" in row and "Os" not in row for row in block(payload, "Traffic"))


def test_url_dimension_comes_back_as_url_key_with_null_row(
    emulator: ClarityEmulator, token: str
) -> None:
    traffic = block(get(emulator, token, **dims("URL")).json(), "Traffic")

    assert all("Url" in row and "URL" not in row for row in traffic)
    assert any(row["Url"] is None for row in traffic)
    assert any(row["Url"] and len(row["Url"]) > 800 for row in traffic)


def test_three_dimensions_give_rows_of_combinations(emulator: ClarityEmulator, token: str) -> None:
    payload = get(emulator, token, **dims("Device", "Browser", "Channel")).json()

    assert [b["metricName"] for b in payload] == METRIC_BLOCKS
    traffic = block(payload, "Traffic")
    combos = [(r["Device"], r["Browser"], r["Channel"]) for r in traffic]
    assert len(set(combos)) == len(combos) > 10
    assert len({c[0] for c in combos}) > 1 and len({c[1] for c in combos}) > 1
    assert {c[0] for c in combos} <= {"PC", "Mobile", "Tablet", "Other", None}
    assert (None, None, None) in combos


def test_values_are_typed_like_the_live_service(emulator: ClarityEmulator, token: str) -> None:
    for params in ({}, dims("OS"), dims("Source", "Campaign"), dims("URL")):
        for b in get(emulator, token, **params).json():
            for row in b["information"]:
                for key, value in row.items():
                    if key in COUNT_FIELDS:
                        # A string holding an int, except zero which is the integer 0.
                        assert value == 0 or (isinstance(value, str) and value.isdigit())
                        assert value != "0"
                    elif key in PERCENT_FIELDS:
                        assert (value in (0, 100) and isinstance(value, int)) or (
                            isinstance(value, float) and round(value, 2) == value
                        )


def test_click_metric_rows_may_miss_fields_unless_disabled(token: str) -> None:
    with ClarityEmulator(seed=1) as emu:
        payload = get(emu, emu.issue_token("p"), **dims("URL")).json()
        emu.configure_project("complete", missing_fields=False)
        complete = get(emu, emu.issue_token("complete"), **dims("URL")).json()
    click_rows = [r for name in METRIC_BLOCKS[:6] for r in block(payload, name)]
    assert any(not set(r) >= CLICK_FIELDS for r in click_rows)
    assert all(set(r) >= CLICK_FIELDS for name in METRIC_BLOCKS[:6] for r in block(complete, name))


def test_project_without_traffic_has_every_block_empty(emulator: ClarityEmulator) -> None:
    emulator.configure_project("quiet", traffic="empty")
    token = emulator.issue_token("quiet")

    snapshot = get(emulator, token).json()
    broken_down = get(emulator, token, **dims("OS", "URL")).json()

    assert snapshot == [
        {"metricName": n, "information": []} for n in METRIC_BLOCKS + SNAPSHOT_BLOCKS
    ]
    assert broken_down == [{"metricName": n, "information": []} for n in METRIC_BLOCKS]


def test_vendor_spelling_emulator_wide_per_project_and_mixed() -> None:
    live = {"distinctUserCount", "pagesPerSessionPercentage"}
    vendor = {"distantUserCount", "PagesPerSessionPercentage"}
    with ClarityEmulator(vendor_spelling=True) as emu:
        emu.configure_project("live-project", vendor_spelling=False)
        emu.configure_project("mixed-project", vendor_spelling="mixed")
        rows = block(get(emu, emu.issue_token("p"), **dims("OS")).json(), "Traffic")
        live_rows = block(get(emu, emu.issue_token("live-project"), **dims("OS")).json(), "Traffic")
        mixed = block(get(emu, emu.issue_token("mixed-project"), **dims("OS")).json(), "Traffic")

    assert all(vendor <= set(r) and not live & set(r) for r in rows)
    assert all(live <= set(r) and not vendor & set(r) for r in live_rows)
    assert any(vendor <= set(r) for r in mixed) and any(live <= set(r) for r in mixed)


def test_url_breakdown_is_capped_at_exactly_1000_rows_per_block(emulator: ClarityEmulator) -> None:
    emulator.configure_project("big", url_count=1200)
    emulator.configure_project("small", url_count=50)

    big = get(emulator, emulator.issue_token("big"), **dims("URL")).json()
    wide = get(emulator, emulator.issue_token("big"), **dims("URL", "Device", "Country")).json()
    small = get(emulator, emulator.issue_token("small"), **dims("URL")).json()

    assert [len(b["information"]) for b in big] == [1000] * 9
    assert [len(b["information"]) for b in wide] == [1000] * 9
    assert len(block(small, "Traffic")) == 51  # 50 URLs and the null bucket
    assert all(len(b["information"]) < 1000 for b in small)


# ---------------------------------------------------------------------- request validation
@pytest.mark.parametrize("days", ["0", "4", "-1", "abc", "1.5", ""])
def test_num_of_days_outside_1_to_3_is_a_400_with_empty_body(
    emulator: ClarityEmulator, token: str, days: str
) -> None:
    response = get(emulator, token, numOfDays=days)

    assert response.status_code == 400
    assert response.content == b""


def test_missing_num_of_days_is_a_400(emulator: ClarityEmulator, token: str) -> None:
    response = requests.get(
        emulator.endpoint_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert response.status_code == 400


def test_unknown_query_parameters_are_tolerated(emulator: ClarityEmulator, token: str) -> None:
    response = get(emulator, token, numOfDays="3", foo="bar", **dims("Device"))

    assert response.status_code == 200
    assert len(response.json()) == 9


@pytest.mark.parametrize("dimension", ["Region", "Country/Region", "os", "url"])
def test_unknown_dimension_falls_back_to_the_snapshot_and_costs_a_call(
    emulator: ClarityEmulator, token: str, dimension: str
) -> None:
    response = get(emulator, token, **dims(dimension))

    assert response.status_code == 200
    assert [b["metricName"] for b in response.json()] == METRIC_BLOCKS + SNAPSHOT_BLOCKS
    assert emulator.calls(PROJECT) == 1


def test_unknown_dimension_beside_a_valid_one_is_ignored(
    emulator: ClarityEmulator, token: str
) -> None:
    traffic = block(get(emulator, token, **dims("Country/Region", "Device")).json(), "Traffic")

    assert all(set(row) & {"Device"} and "Country/Region" not in row for row in traffic)


# ---------------------------------------------------------------------- tokens
def test_issued_token_carries_the_clarity_claims(emulator: ClarityEmulator, token: str) -> None:
    import jwt

    claims = jwt.decode(token, options={"verify_signature": False})

    assert claims["iss"] == "clarity"
    assert claims["aud"] == "clarity.data-exporter"
    assert claims["sub"] == PROJECT
    assert claims["scope"] == "Data.Export"
    assert claims["exp"] > datetime.now(UTC).timestamp() + 80 * 86400


@pytest.mark.parametrize("kind", ["missing", "garbage", "other_emulator", "expired", "basic"])
def test_bad_tokens_get_401_and_cost_nothing(emulator: ClarityEmulator, kind: str) -> None:
    with ClarityEmulator() as other:
        foreign = other.issue_token(PROJECT)
    headers = {
        "missing": {},
        "garbage": {"Authorization": "Bearer not-a-jwt"},
        "other_emulator": {"Authorization": f"Bearer {foreign}"},
        "expired": {"Authorization": f"Bearer {emulator.issue_token(PROJECT, expired=True)}"},
        "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
    }[kind]

    response = requests.get(
        emulator.endpoint_url, params={"numOfDays": "1"}, headers=headers, timeout=10
    )

    assert response.status_code == 401
    assert emulator.calls(PROJECT) == 0
    assert emulator.total_requests() == 1


def test_token_expiry_follows_the_injected_clock() -> None:
    clock = FakeClock(datetime(2025, 3, 1, 12, tzinfo=UTC))
    with ClarityEmulator(clock=clock) as emu:
        token = emu.issue_token(PROJECT, expires_in=timedelta(hours=1))
        assert get(emu, token).status_code == 200
        clock.now += timedelta(hours=1)
        assert get(emu, token).status_code == 401


@pytest.mark.parametrize("scope", [None, "Data.Read", ""])
def test_token_without_export_scope_gets_403(emulator: ClarityEmulator, scope: str | None) -> None:
    response = get(emulator, emulator.issue_token(PROJECT, scope=scope))

    assert response.status_code == 403
    assert emulator.calls(PROJECT) == 0
    assert emulator.requests[-1].project == PROJECT


def test_project_comes_from_the_token(emulator: ClarityEmulator) -> None:
    get(emulator, emulator.issue_token("alpha"))
    get(emulator, emulator.issue_token("alpha"))
    get(emulator, emulator.issue_token("beta"))

    assert emulator.calls("alpha") == 2
    assert emulator.calls("beta") == 1
    assert emulator.total_requests("alpha") == 2
    assert emulator.total_requests() == 3


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


# ---------------------------------------------------------------------- introspection
def test_recorded_requests_redact_the_token(emulator: ClarityEmulator, token: str) -> None:
    get(emulator, token, numOfDays="2", **dims("OS", "Device"))

    (record,) = emulator.requests
    assert record.method == "GET"
    assert record.path == "/export-data/api/v1/project-live-insights"
    assert record.params == {"numOfDays": "2", "dimension1": "OS", "dimension2": "Device"}
    assert record.headers["Authorization"] == "Bearer <redacted>"
    assert record.project == PROJECT
    assert record.status == 200
    assert record.counted
    assert record.at.tzinfo is not None
    assert token not in repr(emulator.requests)


def test_other_paths_are_404_and_not_counted(emulator: ClarityEmulator, token: str) -> None:
    response = requests.get(
        emulator.base_url + "/export-data/api/v1/other",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )

    assert response.status_code == 404
    assert emulator.calls(PROJECT) == 0
    assert emulator.total_requests() == 1


def test_reset_forgets_requests_counts_and_faults(emulator: ClarityEmulator, token: str) -> None:
    get(emulator, token)
    emulator.inject_fault("server_error", permanent=True)

    emulator.reset()

    assert emulator.requests == []
    assert emulator.calls(PROJECT) == 0
    assert get(emulator, token).status_code == 200  # tokens stay valid, fault is gone


# ---------------------------------------------------------------------- determinism
def test_data_is_deterministic_from_seed_and_project() -> None:
    def fetch(seed: int, project: str) -> list[Any]:
        with ClarityEmulator(seed=seed) as emu:
            return get(emu, emu.issue_token(project), **dims("URL", "Device")).json()

    assert fetch(5, "a") == fetch(5, "a")
    assert fetch(5, "a") != fetch(6, "a")
    assert fetch(5, "a") != fetch(5, "b")


def test_more_days_mean_more_sessions(emulator: ClarityEmulator, token: str) -> None:
    def sessions(days: str) -> int:
        traffic = block(get(emulator, token, numOfDays=days).json(), "Traffic")
        return int(traffic[0]["totalSessionCount"])

    assert sessions("3") > sessions("1")


# ---------------------------------------------------------------------- lifecycle and connections
def test_stopped_emulator_refuses_connections() -> None:
    with ClarityEmulator() as emu:
        url = emu.endpoint_url
        assert emu.start() is emu  # starting twice is harmless
    assert not emu.running
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=5)
    with pytest.raises(RuntimeError):
        _ = emu.base_url


def test_connection_json_and_uri_point_at_the_emulator(
    emulator: ClarityEmulator, token: str
) -> None:
    conn = json.loads(emulator.airflow_conn_json(token, daily_limit=3))
    uri = emulator.connection_uri(token)

    assert conn == {
        "conn_type": "clarity",
        "host": emulator.base_url,
        "password": token,
        "extra": {"project_id": PROJECT, "daily_limit": 3},
    }
    # Airflow's host-with-protocol URI form, as Connection.get_uri() writes it.
    assert uri == (f"clarity://http://:{token}@127.0.0.1%3A{emulator.port}/?project_id={PROJECT}")


# ---------------------------------------------------------------------- pytest plugin
def test_plugin_fixtures_give_a_running_emulator_and_token(
    clarity_emulator: ClarityEmulator, clarity_token: str
) -> None:
    response = get(clarity_emulator, clarity_token, **dims("Browser"))

    assert response.status_code == 200
    assert clarity_emulator.calls("demo-project") == 1


@pytest.mark.clarity_emulator(daily_limit=1, seed=9)
def test_plugin_marker_configures_the_emulator(
    clarity_emulator: ClarityEmulator, clarity_token: str
) -> None:
    assert clarity_emulator.seed == 9
    assert get(clarity_emulator, clarity_token).status_code == 200
    assert get(clarity_emulator, clarity_token).status_code == 429


def test_plugin_connection_fixture_sets_the_env_var(
    clarity_connection: str, clarity_emulator: ClarityEmulator, clarity_token: str
) -> None:
    conn = json.loads(os.environ["AIRFLOW_CONN_CLARITY_DEFAULT"])

    assert clarity_connection == "clarity_default"
    assert conn["host"] == clarity_emulator.base_url
    assert conn["password"] == clarity_token
    assert conn["extra"] == {"project_id": "demo-project"}


# ---------------------------------------------------------------------- command line
def test_cli_prints_a_working_url_token_and_connection() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_clarity.testing", "--project", "cli-project"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = dict(proc.stdout.readline().rstrip("\n").split("=", 1) for _ in range(3))
        export_line = proc.stdout.readline()
        base_url = lines["CLARITY_EMULATOR_URL"]
        token = lines["CLARITY_TOKEN"]
        conn = json.loads(lines["AIRFLOW_CONN_CLARITY_DEFAULT"])

        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base_url)
        assert not base_url.endswith(":0")
        assert conn == {
            "conn_type": "clarity",
            "host": base_url,
            "password": token,
            "extra": {"project_id": "cli-project"},
        }
        assert export_line.startswith("export AIRFLOW_CONN_CLARITY_DEFAULT='{")

        response = requests.get(
            base_url + "/export-data/api/v1/project-live-insights?numOfDays=1&dimension1=OS",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        payload = response.json()
        assert response.status_code == 200
        assert [b["metricName"] for b in payload] == METRIC_BLOCKS
        assert all({"Os", "OS"} & set(row) for b in payload for row in b["information"]), (
            "every row carries the OS dimension"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0


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
