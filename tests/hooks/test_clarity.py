"""ClarityHook against the Clarity emulator over a real socket on 127.0.0.1.

What a user would notice is asserted: the rows that come back, the requests the emulator
received (and so the calls spent), the exception type and its message, and that the token
shows up nowhere.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest

from airflow_provider_clarity.exceptions import (
    ClarityAuthError,
    ClarityDimensionFallbackError,
    ClarityError,
    ClarityPermissionError,
    ClarityQuotaExceededError,
    ClarityRequestError,
    ClarityResponseError,
    ClarityServerError,
)
from airflow_provider_clarity.hooks.clarity import (
    API_ENDPOINT,
    VALID_DIMENSIONS,
    CallObserver,
    ClarityHook,
    ClarityRequest,
)
from airflow_provider_clarity.testing.emulator import ClarityEmulator, RecordedRequest

PROJECT = "demo-project"
CONN_ID = "clarity_test"
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


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def emulator(clarity_emulator: ClarityEmulator) -> ClarityEmulator:
    """The emulator from the provider's own pytest plugin."""
    return clarity_emulator


def received(emulator: ClarityEmulator, at_least: int) -> list[RecordedRequest]:
    """The requests the emulator recorded, once it has recorded ``at_least`` of them.

    The emulator records a request just after answering it, so the client can get its
    answer a moment before the record exists.
    """
    deadline = time.monotonic() + 5
    while len(emulator.requests) < at_least and time.monotonic() < deadline:
        time.sleep(0.005)
    return emulator.requests


@pytest.fixture
def token(emulator: ClarityEmulator) -> str:
    return emulator.issue_token(PROJECT)


@pytest.fixture
def set_connection(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Define an Airflow connection through an AIRFLOW_CONN_<ID> environment variable."""

    def _set(host: str | None, password: str | None, conn_id: str = CONN_ID, **extra: Any) -> None:
        conn: dict[str, Any] = {"conn_type": "clarity", "extra": extra}
        if host is not None:
            conn["host"] = host
        if password is not None:
            conn["password"] = password
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))

    return _set


@pytest.fixture
def hook(emulator: ClarityEmulator, token: str, set_connection: Callable[..., None]) -> ClarityHook:
    set_connection(emulator.base_url, token, project_id=PROJECT)
    return ClarityHook(CONN_ID, timeout=5, max_retries=2, retry_backoff=0.01)


class RecordingObserver:
    """A CallObserver that notes what the emulator had received when each attempt started."""

    def __init__(self, emulator: ClarityEmulator | None = None) -> None:
        self.emulator = emulator
        self.events: list[tuple[str, str]] = []
        self.calls_before: list[int] = []

    def before_call(self, request: ClarityRequest) -> None:
        self.events.append(("before", request.describe()))
        if self.emulator is not None:
            self.calls_before.append(self.emulator.calls(PROJECT))

    def after_call(self, request: ClarityRequest, outcome: str) -> None:
        self.events.append(("after", outcome))

    @property
    def outcomes(self) -> list[str]:
        return [value for kind, value in self.events if kind == "after"]


@contextmanager
def canned_server(
    status: int, body: bytes, *, content_length: int | None = None
) -> Iterator[tuple[str, list[str]]]:
    """A one-trick HTTP server answering every GET with ``status`` and ``body``.

    For answers the emulator cannot be made to give (it validates like the live service),
    such as the silent dimension fallback for a valid name or a body of the wrong shape.
    A ``content_length`` above ``len(body)`` makes the answer break off mid-body.
    """
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(content_length or len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", paths
    finally:
        server.shutdown()
        server.server_close()


def local_jwt(**claims: Any) -> str:
    """A JWT signed with a local key, for test_connection checks that never reach a server."""
    base = {
        "iss": "clarity",
        "aud": "clarity.data-exporter",
        "sub": PROJECT,
        "exp": int((datetime.now(UTC) + timedelta(days=30)).timestamp()),
    }
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, "k" * 32, "HS256")


def exception_texts(exc: BaseException) -> str:
    """Everything a user could read about an exception: message, repr, chain, traceback."""
    texts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current), repr(current.args)]
        for chained in (current.__cause__, current.__context__):
            if chained is not None:
                texts += [str(chained), repr(chained)]
        current = current.__cause__ or current.__context__
    return "\n".join(texts)


# ------------------------------------------------------------------ ClarityRequest.build


@pytest.mark.parametrize(
    ("num_of_days", "dimensions", "params"),
    [
        (1, (), {"numOfDays": "1"}),
        ("2", "OS", {"numOfDays": "2", "dimension1": "OS"}),
        (" 3 ", "os, device", {"numOfDays": "3", "dimension1": "OS", "dimension2": "Device"}),
        (1, ["url", "BROWSER"], {"numOfDays": "1", "dimension1": "URL", "dimension2": "Browser"}),
        (1, "['OS', 'Device']", {"numOfDays": "1", "dimension1": "OS", "dimension2": "Device"}),
        (1, "('Channel',)", {"numOfDays": "1", "dimension1": "Channel"}),
        (1, "[OS, Device]", {"numOfDays": "1", "dimension1": "OS", "dimension2": "Device"}),
        (1, "[]", {"numOfDays": "1"}),
        (1, None, {"numOfDays": "1"}),
        (1, ["OS", "os", "OS "], {"numOfDays": "1", "dimension1": "OS"}),
        (1, ["Country", "Country/Region"], {"numOfDays": "1", "dimension1": "Country"}),
    ],
)
def test_build_accepts_template_friendly_forms(
    num_of_days: Any, dimensions: Any, params: dict[str, str]
) -> None:
    assert ClarityRequest.build(num_of_days, dimensions).params() == params


@pytest.mark.parametrize("num_of_days", [0, 4, "4", "two", 1.5, 2.0, True, None, "", "-1"])
def test_build_rejects_num_of_days_outside_1_to_3(num_of_days: Any) -> None:
    with pytest.raises(ClarityRequestError, match="num_of_days must be 1, 2 or 3"):
        ClarityRequest.build(num_of_days)


@pytest.mark.parametrize(
    ("dimensions", "suggestion"),
    [
        ("Region", "Country"),
        (["Brwoser"], "Browser"),
        (["Devices"], "Device"),
        ("DeviceType", "Device"),
        ("PageURL", "URL"),
        ("Xyzzy", None),
    ],
)
def test_build_rejects_unknown_dimensions_with_valid_names_and_suggestion(
    dimensions: Any, suggestion: str | None
) -> None:
    with pytest.raises(ClarityRequestError) as info:
        ClarityRequest.build(1, dimensions)
    message = str(info.value)
    assert "Valid: " + ", ".join(VALID_DIMENSIONS) in message
    if suggestion:
        assert f"did you mean {suggestion!r}?" in message
    else:
        assert "did you mean" not in message


def test_region_message_reads_naturally() -> None:
    with pytest.raises(ClarityRequestError) as info:
        ClarityRequest.build(1, "Region")
    assert str(info.value).startswith(
        "Clarity has no dimension 'Region'; did you mean 'Country'? Valid: Browser, Device"
    )


@pytest.mark.parametrize(
    "dimensions",
    [
        ["OS", "Device", "URL", "Browser"],
        "OS,Device,URL,Browser",
        [1],
        {"OS": 1},
        ["OS", ""],
        "['OS'",
        "[['OS']]",
        "[1, 2]",
    ],
)
def test_build_rejects_malformed_dimension_lists(dimensions: Any) -> None:
    with pytest.raises(ClarityRequestError):
        ClarityRequest.build(1, dimensions)


def test_more_than_three_dimensions_says_the_limit() -> None:
    with pytest.raises(ClarityRequestError, match="at most 3 dimensions"):
        ClarityRequest.build(1, ["OS", "Device", "URL", "Browser"])


def test_duplicates_after_aliasing_do_not_count_towards_the_limit() -> None:
    request = ClarityRequest.build(1, ["Country", "country/region", "OS", "os", "URL"])
    assert request.dimensions == ("Country", "OS", "URL")


def test_country_region_alias_logs_why(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        request = ClarityRequest.build(1, "Country/Region")
    assert request.dimensions == ("Country",)
    assert "ignores 'Country/Region'" in caplog.text


def test_direct_construction_is_validated_too() -> None:
    assert ClarityRequest(2, ("OS",)).params() == {"numOfDays": "2", "dimension1": "OS"}
    for bad in [(4, ()), ("2", ()), (1, ("os",)), (1, ("OS", "OS")), (1, ["OS"])]:
        with pytest.raises(ClarityRequestError):
            ClarityRequest(*bad)  # type: ignore[arg-type]


def test_describe_is_short_and_readable() -> None:
    assert ClarityRequest.build(1, "OS,Device").describe() == "numOfDays=1 dimensions=OS,Device"
    assert ClarityRequest.build(3).describe() == "numOfDays=3 dimensions=none"


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


def logged(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> str:
    """Every log line so far: Airflow's hooks log through structlog, which writes to stdout
    outside a task, while plain ``logging`` loggers reach caplog."""
    out, err = capsys.readouterr()
    return "\n".join([caplog.text, out, err])


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


def test_settings_come_from_extras_and_are_coerced(
    set_connection: Callable[..., None], token: str
) -> None:
    set_connection(
        None,
        token,
        daily_limit="12",
        reserve=" 3 ",
        quota_window="Rolling",
        rolling_window_seconds="3600",
    )
    hook = ClarityHook(CONN_ID)
    assert hook.base_url == "https://www.clarity.ms"
    assert hook.project_id == PROJECT  # no project_id extra: the project the token names
    assert (hook.daily_limit, hook.reserve) == (12, 3)
    assert (hook.quota_window, hook.rolling_window_seconds) == ("rolling", 3600)


def test_settings_read_the_prefixed_keys_older_forms_saved(
    set_connection: Callable[..., None], token: str
) -> None:
    set_connection(
        None, token, extra__clarity__project_id="site-7", extra__clarity__daily_limit="7"
    )
    hook = ClarityHook(CONN_ID)
    assert (hook.project_id, hook.daily_limit) == ("site-7", 7)


def test_settings_defaults(set_connection: Callable[..., None], token: str) -> None:
    set_connection("", token, project_id="site-42")
    hook = ClarityHook(CONN_ID)
    assert hook.project_id == "site-42"
    assert (hook.daily_limit, hook.reserve) == (10, 0)
    assert (hook.quota_window, hook.rolling_window_seconds) == ("utc_day", 86400)


@pytest.mark.parametrize(
    ("extra", "setting"),
    [
        ({"daily_limit": "ten"}, "daily_limit"),
        ({"daily_limit": 0}, "daily_limit"),
        ({"daily_limit": True}, "daily_limit"),
        ({"reserve": "-1"}, "reserve"),
        ({"quota_window": "weekly"}, "quota_window"),
        ({"rolling_window_seconds": "1.5"}, "rolling_window_seconds"),
    ],
)
def test_garbage_settings_raise_request_error(
    set_connection: Callable[..., None], token: str, extra: dict[str, Any], setting: str
) -> None:
    set_connection(None, token, **extra)
    with pytest.raises(ClarityRequestError, match=f"Connection '{CONN_ID}'"):
        getattr(ClarityHook(CONN_ID), setting)


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


# --------------------------------------------------------------------- test_connection


def test_test_connection_accepts_a_valid_token_without_calling(
    hook: ClarityHook, emulator: ClarityEmulator
) -> None:
    ok, message = hook.test_connection()
    assert ok, message
    assert message.startswith(f"Token for project {PROJECT} is valid; expires on ")
    assert "UTC" in message
    assert "No API call was made" in message
    assert emulator.total_requests() == 0


def _expired_token() -> str:
    return local_jwt(exp=int(datetime(2024, 3, 1, 12, 30, tzinfo=UTC).timestamp()))


@pytest.mark.parametrize(
    ("host", "password", "reason"),
    [
        ("https://www.clarity.ms", None, "has no API token"),
        ("https://www.clarity.ms", "not-a-jwt-at-all", "is not a JWT"),
        ("https://www.clarity.ms", "a.b.c", "is not a JWT"),
        ("https://www.clarity.ms", local_jwt(aud="someone.else"), "not a Clarity Data Export"),
        ("https://www.clarity.ms", _expired_token(), "expired on 2024-03-01 12:30 UTC"),
        ("http://clarity.example.com", local_jwt(), "is not an https URL"),
    ],
)
def test_test_connection_reports_what_is_wrong(
    set_connection: Callable[..., None], host: str, password: str | None, reason: str
) -> None:
    set_connection(host, password)
    ok, message = ClarityHook(CONN_ID).test_connection()
    assert not ok
    assert reason in message
    if password:
        assert password not in message


@pytest.mark.parametrize("host", ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9"])
def test_test_connection_allows_plain_http_on_loopback(
    set_connection: Callable[..., None], host: str
) -> None:
    set_connection(host, local_jwt())
    ok, message = ClarityHook(CONN_ID).test_connection()
    assert ok, message


def test_test_connection_reports_garbage_extras(set_connection: Callable[..., None]) -> None:
    set_connection(None, local_jwt(), daily_limit="lots")
    ok, message = ClarityHook(CONN_ID).test_connection()
    assert not ok
    assert "daily_limit" in message


def test_test_connection_reports_a_missing_connection() -> None:
    ok, message = ClarityHook("no_such_clarity_conn").test_connection()
    assert not ok
    assert "no_such_clarity_conn" in message


# ------------------------------------------------------------------- token never leaks


def _quota(emulator: ClarityEmulator) -> None:
    emulator.consume_quota(PROJECT)


LEAK_SCENARIOS: dict[str, tuple[Callable[[ClarityEmulator], None], type[ClarityError]]] = {
    "429": (_quota, ClarityQuotaExceededError),
    "500": (lambda e: e.inject_fault("server_error", permanent=True), ClarityServerError),
    "slow": (lambda e: e.inject_fault("slow", permanent=True, delay=2), ClarityServerError),
    "drop": (lambda e: e.inject_fault("drop", permanent=True), ClarityServerError),
    "truncated": (lambda e: e.inject_fault("truncated"), ClarityResponseError),
}


@pytest.mark.parametrize("scenario", list(LEAK_SCENARIOS))
def test_token_never_appears_in_errors_or_logs(
    emulator: ClarityEmulator,
    token: str,
    set_connection: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    scenario: str,
) -> None:
    arrange, expected = LEAK_SCENARIOS[scenario]
    arrange(emulator)
    set_connection(emulator.base_url, token, project_id=PROJECT)
    hook = ClarityHook(CONN_ID, timeout=0.3, max_retries=1, retry_backoff=0.01)

    with caplog.at_level(logging.DEBUG), pytest.raises(expected) as info:
        hook.get_live_insights(1, "OS")

    logs = logged(caplog, capsys)
    assert "Clarity call" in logs  # the logs were captured, so the check below is real
    for text in (exception_texts(info.value), logs):
        assert token not in text
        assert token[-40:] not in text  # no partial token either


@pytest.mark.parametrize("scope", ["expired", "no-scope"])
def test_token_never_appears_in_auth_errors(
    emulator: ClarityEmulator,
    set_connection: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    scope: str,
) -> None:
    bad = (
        emulator.issue_token(PROJECT, expired=True)
        if scope == "expired"
        else emulator.issue_token(PROJECT, scope=None)
    )
    set_connection(emulator.base_url, bad)
    with caplog.at_level(logging.DEBUG), pytest.raises(ClarityError) as info:
        ClarityHook(CONN_ID).get_live_insights()
    ok, message = ClarityHook(CONN_ID).test_connection()
    logs = logged(caplog, capsys)
    # An expired token is refused before sending; a token without the scope reaches Clarity.
    assert emulator.total_requests() == (0 if scope == "expired" else 1)
    if scope == "no-scope":
        assert "Clarity call" in logs  # the logs were captured, so the check below is real
    assert ok is (scope == "no-scope")  # test_connection cannot see a missing scope offline
    for text in (exception_texts(info.value), logs, message):
        assert bad not in text


@pytest.mark.parametrize(
    ("token", "ok"),
    [
        ("not-a-jwt", False),
        ("a.b.c", False),
        ("eyJhbGciOiJIUzI1NiJ9.!!!.sig", False),
        # Claims decoded by hand: an absurd exp is treated as no expiry, not a crash.
        ("eyJhbGciOiJIUzI1NiJ9.eyJhdWQiOiJjbGFyaXR5LmRhdGEtZXhwb3J0ZXIiLCJleHAiOjFlMzAwfQ.s", True),
    ],
)
def test_offline_token_inspection_never_crashes(token: str, ok: bool) -> None:
    from airflow_provider_clarity.token import inspect_token as _inspect_token

    assert (_inspect_token(token).problem is None) is ok
