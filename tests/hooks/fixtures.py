"""Fixtures and helpers of the hook tests: the emulator, a connection, canned servers, tokens."""

from __future__ import annotations

import json
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

from airflow_provider_clarity.hooks.clarity import (
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


def logged(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> str:
    """Every log line so far: Airflow's hooks log through structlog, which writes to stdout
    outside a task, while plain ``logging`` loggers reach caplog."""
    out, err = capsys.readouterr()
    return "\n".join([caplog.text, out, err])


def _expired_token() -> str:
    return local_jwt(exp=int(datetime(2024, 3, 1, 12, 30, tzinfo=UTC).timestamp()))
