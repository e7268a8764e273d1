"""ClarityHook against the Clarity emulator over a real socket on 127.0.0.1.

What a user would notice is asserted: the rows that come back, the requests the emulator
received (and so the calls spent), the exception type and its message, and that the token
shows up nowhere.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_clarity.exceptions import (
    ClarityAuthError,
    ClarityQuotaExceededError,
    ClarityRequestError,
)
from airflow_provider_clarity.hooks.clarity import (
    API_ENDPOINT,
    CallObserver,
    ClarityHook,
    ClarityRequest,
)
from airflow_provider_clarity.testing.emulator import ClarityEmulator
from tests.hooks.fixtures import (
    CONN_ID,
    METRIC_BLOCKS,
    PROJECT,
    RecordingObserver,
    logged,
    received,
)

# ---------------------------------------------------------------------- happy paths


def test_dimension_call_returns_the_nine_blocks_with_dimension_keys(
    hook: ClarityHook, emulator: ClarityEmulator
) -> None:
    payload = hook.get_live_insights(1, ["os"])

    assert [block["metricName"] for block in payload] == METRIC_BLOCKS
    traffic = next(block for block in payload if block["metricName"] == "Traffic")
    assert traffic["information"]
    assert all({k.lower() for k in row} & {"os"} for row in traffic["information"])
    [sent] = received(emulator, 1)
    assert sent.path == API_ENDPOINT
    assert sent.params == {"numOfDays": "1", "dimension1": "OS"}
    assert sent.headers["Authorization"].startswith("Bearer ")
    assert emulator.calls(PROJECT) == 1


def test_no_dimension_call_returns_the_sixteen_block_snapshot(hook: ClarityHook) -> None:
    payload = hook.get_live_insights(num_of_days="3")
    assert len(payload) == 16
    assert {"PopularPages", "ReferrerUrl", "Country"} <= {b["metricName"] for b in payload}


def test_rendered_list_and_country_region_reach_the_wire_spelled_right(
    hook: ClarityHook, emulator: ClarityEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        hook.get_live_insights("2", "['url', 'Country/Region', 'country']")
    assert received(emulator, 1)[0].params == {
        "numOfDays": "2",
        "dimension1": "URL",
        "dimension2": "Country",
    }
    assert "ignores 'Country/Region'" in caplog.text


def test_a_prebuilt_request_is_sent_as_is(hook: ClarityHook, emulator: ClarityEmulator) -> None:
    hook.get_live_insights(request=ClarityRequest.build(2, "Device"))
    assert received(emulator, 1)[0].params == {"numOfDays": "2", "dimension1": "Device"}


def test_empty_project_with_dimensions_is_not_a_fallback(
    hook: ClarityHook, emulator: ClarityEmulator
) -> None:
    emulator.configure_project(PROJECT, traffic="empty")
    payload = hook.get_live_insights(1, "OS")
    assert [block["metricName"] for block in payload] == METRIC_BLOCKS
    assert all(block["information"] == [] for block in payload)


def test_one_log_line_per_call_describes_it(
    hook: ClarityHook, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    with caplog.at_level(logging.INFO):
        hook.get_live_insights(1, "OS")
    lines = [line for line in logged(caplog, capsys).splitlines() if "Clarity call" in line]
    assert len(lines) == 1
    assert (
        f"Clarity call numOfDays=1 dimensions=OS for project '{PROJECT}' -> 200 (attempt 1/3)"
        in lines[0]
    )


def test_retries_are_logged_with_their_attempt_number(
    hook: ClarityHook,
    emulator: ClarityEmulator,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emulator.inject_fault("server_error", count=1)
    hook.get_live_insights()
    text = logged(caplog, capsys)
    assert "-> 500 (attempt 1/3)" in text
    assert "-> 200 (attempt 2/3)" in text


# ----------------------------------------------------------- validation before traffic


@pytest.mark.parametrize(
    ("num_of_days", "dimensions"),
    [(4, ()), ("0", ()), (1, "Region"), (1, ["OS", "Device", "URL", "Browser"])],
)
def test_invalid_requests_raise_before_any_request(
    hook: ClarityHook, emulator: ClarityEmulator, num_of_days: Any, dimensions: Any
) -> None:
    with pytest.raises(ClarityRequestError):
        hook.get_live_insights(num_of_days, dimensions)
    assert emulator.total_requests() == 0


def test_missing_token_raises_before_any_request(
    emulator: ClarityEmulator, set_connection: Callable[..., None]
) -> None:
    set_connection(emulator.base_url, None)
    with pytest.raises(ClarityAuthError, match="has no API token"):
        ClarityHook(CONN_ID).get_live_insights()
    assert emulator.total_requests() == 0


def test_plain_http_to_a_remote_host_is_refused_before_sending_the_token(
    set_connection: Callable[..., None], token: str
) -> None:
    set_connection("http://clarity.example.invalid", token)
    with pytest.raises(ClarityRequestError, match="not an https URL"):
        ClarityHook(CONN_ID, max_retries=0).get_live_insights()


# ------------------------------------------------------------------------- observers


def test_observer_runs_before_every_attempt_and_after_each(
    hook: ClarityHook, emulator: ClarityEmulator
) -> None:
    emulator.inject_fault("server_error", count=1)
    observer = RecordingObserver(emulator)
    hook.get_live_insights(1, "OS", observer=observer)

    assert isinstance(observer, CallObserver)
    assert observer.events == [
        ("before", "numOfDays=1 dimensions=OS"),
        ("after", "500"),
        ("before", "numOfDays=1 dimensions=OS"),
        ("after", "200"),
    ]
    # Each before_call ran while the emulator had counted only the earlier attempts.
    assert observer.calls_before == [0, 1]


def test_observer_can_refuse_an_attempt(hook: ClarityHook, emulator: ClarityEmulator) -> None:
    class Refuses(RecordingObserver):
        def before_call(self, request: ClarityRequest) -> None:
            super().before_call(request)
            if len(self.outcomes) >= 1:
                raise ClarityQuotaExceededError("ledger says no", source="ledger")

    emulator.inject_fault("server_error", permanent=True)
    observer = Refuses()
    with pytest.raises(ClarityQuotaExceededError, match="ledger says no"):
        hook.get_live_insights(observer=observer)
    assert len(received(emulator, 1)) == 1
    assert observer.outcomes == ["500"]


# ------------------------------------------------------------------ connection handling


def test_extras_are_never_sent_as_headers(
    emulator: ClarityEmulator, token: str, set_connection: Callable[..., None]
) -> None:
    set_connection(
        emulator.base_url,
        token,
        project_id=PROJECT,
        daily_limit=10,
        reserve="2",
        quota_window="utc_day",
        rolling_window_seconds=86400,
        **{"X-Custom": "should-not-travel"},
    )
    ClarityHook(CONN_ID).get_live_insights()
    sent = {name.lower() for name in received(emulator, 1)[0].headers}
    assert "authorization" in sent
    assert not sent & {
        "project_id",
        "daily_limit",
        "reserve",
        "quota_window",
        "rolling_window_seconds",
        "x-custom",
    }


def test_the_auth_object_does_not_show_the_token(hook: ClarityHook, token: str) -> None:
    session = hook.get_conn()
    assert session.auth is not None
    assert token not in repr(session.auth)
    assert token not in str(vars(hook))


@pytest.mark.parametrize(
    ("host", "base_url"),
    [
        ("www.clarity.ms", "https://www.clarity.ms"),
        ("https://www.clarity.ms/", "https://www.clarity.ms"),
        ("http://127.0.0.1:8123", "http://127.0.0.1:8123"),
    ],
)
def test_host_with_or_without_scheme(
    set_connection: Callable[..., None], token: str, host: str, base_url: str
) -> None:
    set_connection(host, token)
    assert ClarityHook(CONN_ID).base_url == base_url


def test_connection_uri_form_works(
    emulator: ClarityEmulator, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", emulator.connection_uri(token))
    hook = ClarityHook(CONN_ID)
    assert len(hook.get_live_insights()) == 16
    assert hook.project_id == PROJECT
