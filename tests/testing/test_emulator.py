"""The Clarity emulator, exercised over real HTTP on 127.0.0.1 like a client would."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from airflow_provider_clarity.testing import ClarityEmulator
from tests.testing.fixtures import (
    CLICK_FIELDS,
    COUNT_FIELDS,
    METRIC_BLOCKS,
    PERCENT_FIELDS,
    PROJECT,
    SNAPSHOT_BLOCKS,
    FakeClock,
    block,
    dims,
    get,
)


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
