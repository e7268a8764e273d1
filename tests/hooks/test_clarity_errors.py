"""ClarityHook's failures: 4xx, 5xx and transport, unusable answers; the calls each costs."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_clarity.exceptions import (
    ClarityAuthError,
    ClarityDimensionFallbackError,
    ClarityPermissionError,
    ClarityQuotaExceededError,
    ClarityRequestError,
    ClarityResponseError,
    ClarityServerError,
)
from airflow_provider_clarity.hooks.clarity import (
    ClarityHook,
)
from airflow_provider_clarity.testing.emulator import ClarityEmulator
from tests.hooks.fixtures import (
    CONN_ID,
    PROJECT,
    RecordingObserver,
    canned_server,
    local_jwt,
    received,
)

# ------------------------------------------------------------------------ 4xx mapping


def test_429_costs_one_request_and_is_not_retried(
    emulator: ClarityEmulator, token: str, set_connection: Callable[..., None]
) -> None:
    set_connection(emulator.base_url, token, project_id=PROJECT)
    emulator.consume_quota(PROJECT)
    hook = ClarityHook(CONN_ID, max_retries=2, retry_backoff=0.01)

    with pytest.raises(ClarityQuotaExceededError) as info:
        hook.get_live_insights(1, "OS")

    assert len(received(emulator, 1)) == 1
    assert info.value.source == "api"
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    assert info.value.reset_at == datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=UTC)
    message = str(info.value)
    assert "00:00 UTC" in message
    assert "usage" in message
    assert PROJECT in message


def test_429_after_the_daily_limit_of_real_calls(
    emulator: ClarityEmulator, token: str, set_connection: Callable[..., None]
) -> None:
    emulator.configure_project(PROJECT, daily_limit=2)
    set_connection(emulator.base_url, token, project_id=PROJECT)
    hook = ClarityHook(CONN_ID, retry_backoff=0.01)
    hook.get_live_insights()
    hook.get_live_insights()
    with pytest.raises(ClarityQuotaExceededError):
        hook.get_live_insights()
    assert [r.status for r in received(emulator, 3)] == [200, 200, 429]


def test_expired_token_maps_to_auth_error_with_next_steps(
    emulator: ClarityEmulator, set_connection: Callable[..., None]
) -> None:
    set_connection(emulator.base_url, emulator.issue_token(PROJECT, expired=True))
    with pytest.raises(ClarityAuthError) as info:
        ClarityHook(CONN_ID, retry_backoff=0.01).get_live_insights()
    message = str(info.value)
    assert f"connection '{CONN_ID}'" in message
    assert "expired on " in message
    assert "Clarity > Settings > Data Export" in message
    assert "No Clarity call was made" in message
    assert emulator.total_requests() == 0  # the token's own expiry says Clarity would refuse it


def test_token_from_another_issuer_maps_to_auth_error(
    emulator: ClarityEmulator, set_connection: Callable[..., None]
) -> None:
    set_connection(emulator.base_url, local_jwt())
    with pytest.raises(ClarityAuthError):
        ClarityHook(CONN_ID, retry_backoff=0.01).get_live_insights()
    assert len(received(emulator, 1)) == 1


def test_token_without_export_scope_maps_to_permission_error(
    emulator: ClarityEmulator, set_connection: Callable[..., None]
) -> None:
    set_connection(emulator.base_url, emulator.issue_token(PROJECT, scope="Data.Read"))
    with pytest.raises(ClarityPermissionError) as info:
        ClarityHook(CONN_ID, retry_backoff=0.01).get_live_insights()
    assert "Data.Export scope" in str(info.value)
    assert "another project" in str(info.value)
    assert len(received(emulator, 1)) == 1


def test_400_maps_to_request_error_showing_the_params(
    set_connection: Callable[..., None], token: str
) -> None:
    with canned_server(400, b"") as (base_url, paths):
        set_connection(base_url, token)
        with pytest.raises(ClarityRequestError) as info:
            ClarityHook(CONN_ID, retry_backoff=0.01).get_live_insights(2, "OS")
    assert "'numOfDays': '2'" in str(info.value)
    assert "'dimension1': 'OS'" in str(info.value)
    assert len(paths) == 1


# ------------------------------------------------------------------- 5xx and transport


def test_permanent_500_costs_one_plus_retries_requests(
    emulator: ClarityEmulator, token: str, set_connection: Callable[..., None]
) -> None:
    set_connection(emulator.base_url, token)
    emulator.inject_fault("server_error", permanent=True)
    observer = RecordingObserver()

    with pytest.raises(ClarityServerError) as info:
        ClarityHook(CONN_ID, max_retries=2, retry_backoff=0.01).get_live_insights(observer=observer)

    assert len(received(emulator, 3)) == 3
    assert observer.outcomes == ["500", "500", "500"]
    assert "after 3 attempts" in str(info.value)
    assert "lasted for days" in str(info.value)


@pytest.mark.parametrize("max_retries", [0, 4])
def test_retry_count_is_configurable(
    emulator: ClarityEmulator,
    token: str,
    set_connection: Callable[..., None],
    max_retries: int,
) -> None:
    set_connection(emulator.base_url, token)
    emulator.inject_fault("server_error", permanent=True)
    with pytest.raises(ClarityServerError):
        ClarityHook(CONN_ID, max_retries=max_retries, retry_backoff=0.01).get_live_insights()
    assert len(received(emulator, 1 + max_retries)) == 1 + max_retries


def test_transient_500_is_retried_then_succeeds(
    hook: ClarityHook, emulator: ClarityEmulator
) -> None:
    emulator.inject_fault("server_error", count=2)
    observer = RecordingObserver(emulator)
    payload = hook.get_live_insights(1, "OS", observer=observer)
    assert len(payload) == 9
    assert [r.status for r in received(emulator, 3)] == [500, 500, 200]
    assert observer.outcomes == ["500", "500", "200"]


def test_slow_answer_times_out_and_is_retried(
    emulator: ClarityEmulator, token: str, set_connection: Callable[..., None]
) -> None:
    set_connection(emulator.base_url, token)
    emulator.inject_fault("slow", count=1, delay=1.5)
    observer = RecordingObserver()
    hook = ClarityHook(CONN_ID, timeout=0.5, max_retries=2, retry_backoff=0.01)

    payload = hook.get_live_insights(1, "Device", observer=observer)

    assert len(payload) == 9
    assert observer.outcomes == ["timeout", "200"]
    assert len(received(emulator, 2)) == 2


def test_dropped_connection_is_retried(hook: ClarityHook, emulator: ClarityEmulator) -> None:
    emulator.inject_fault("drop", count=1)
    observer = RecordingObserver()
    assert len(hook.get_live_insights(observer=observer)) == 16
    assert observer.outcomes == ["connection_error", "200"]
    assert [r.status for r in received(emulator, 2)] == [None, 200]


def test_permanent_drop_raises_server_error_after_retries(
    hook: ClarityHook, emulator: ClarityEmulator
) -> None:
    emulator.inject_fault("drop", permanent=True)
    with pytest.raises(ClarityServerError, match="after 3 attempts"):
        hook.get_live_insights()
    assert len(received(emulator, 3)) == 3


def test_unreachable_host_raises_server_error_after_retries(
    set_connection: Callable[..., None], token: str
) -> None:
    with canned_server(200, b"[]") as (base_url, _):
        pass  # the port is now closed: nothing listens there any more
    set_connection(base_url, token)
    observer = RecordingObserver()
    with pytest.raises(ClarityServerError) as info:
        ClarityHook(CONN_ID, max_retries=1, retry_backoff=0.01).get_live_insights(observer=observer)
    # Nothing listened: the request certainly never reached Clarity, so it is not charged.
    assert observer.outcomes == ["connection_refused", "connection_refused"]
    assert "nothing accepted a connection" in str(info.value)
    assert "no call was spent" in str(info.value)


# ------------------------------------------------------------------ response validation


def test_truncated_json_costs_one_request_and_is_not_retried(
    hook: ClarityHook, emulator: ClarityEmulator
) -> None:
    emulator.inject_fault("truncated", count=1)
    with pytest.raises(ClarityResponseError) as info:
        hook.get_live_insights(1, "OS")
    assert type(info.value) is ClarityResponseError
    assert len(received(emulator, 1)) == 1
    assert "not valid JSON" in str(info.value)
    assert "bytes, starting '[{" in str(info.value)


def test_answer_breaking_off_mid_body_is_not_retried(
    set_connection: Callable[..., None], token: str
) -> None:
    observer = RecordingObserver()
    with canned_server(200, b'[{"metricName": "Tra', content_length=5000) as (base_url, paths):
        set_connection(base_url, token)
        with pytest.raises(ClarityResponseError, match="broke off"):
            ClarityHook(CONN_ID, retry_backoff=0.01).get_live_insights(observer=observer)
    assert len(paths) == 1
    assert observer.outcomes == ["connection_error"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"<html>Service Unavailable</html>", "not valid JSON"),
        (b'{"metricName": "Traffic", "information": []}', "not a list of metric blocks"),
        (b'[{"information": []}]', "without a 'metricName'"),
        (b'[{"metricName": "Traffic", "information": "none"}]', "not a list of rows"),
        (b'[{"metricName": "Traffic", "information": [1, 2]}]', "not a list of rows"),
        (b"[1]", "instead of a metric block"),
    ],
)
def test_unusable_bodies_raise_response_error(
    set_connection: Callable[..., None], token: str, body: bytes, problem: str
) -> None:
    with canned_server(200, body) as (base_url, paths):
        set_connection(base_url, token)
        with pytest.raises(ClarityResponseError) as info:
            ClarityHook(CONN_ID, retry_backoff=0.01).get_live_insights()
    assert problem in str(info.value)
    assert f"{len(body)} bytes" in str(info.value)
    assert len(paths) == 1


def test_silent_dimension_fallback_raises_with_the_payload(
    emulator: ClarityEmulator, set_connection: Callable[..., None], token: str
) -> None:
    # What the live API answers for a dimension it ignores: the no-dimension snapshot.
    snapshot = emulator.payload(PROJECT)
    with canned_server(200, json.dumps(snapshot).encode()) as (base_url, paths):
        set_connection(base_url, token)
        with pytest.raises(ClarityDimensionFallbackError) as info:
            ClarityHook(CONN_ID, retry_backoff=0.01).get_live_insights(1, ["Browser", "OS"])
    assert info.value.payload == snapshot
    assert info.value.dimensions == ("Browser", "OS")
    assert "ignored the requested dimensions (Browser, OS)" in str(info.value)
    assert len(paths) == 1


def test_fallback_detection_matches_dimension_keys_case_insensitively(
    set_connection: Callable[..., None], token: str
) -> None:
    payload = [{"metricName": "Traffic", "information": [{"Url": "/a", "sessionsCount": "1"}]}]
    with canned_server(200, json.dumps(payload).encode()) as (base_url, _):
        set_connection(base_url, token)
        assert ClarityHook(CONN_ID).get_live_insights(1, "URL") == payload
