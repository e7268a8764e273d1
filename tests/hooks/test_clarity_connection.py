"""ClarityHook.test_connection: what is wrong with a connection, told without spending a call."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from airflow_provider_clarity.hooks.clarity import (
    ClarityHook,
)
from airflow_provider_clarity.testing.emulator import ClarityEmulator
from tests.hooks.fixtures import CONN_ID, PROJECT, _expired_token, local_jwt

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
