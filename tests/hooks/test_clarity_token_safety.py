"""The token never appears in an exception, a repr, a log line or output, whatever fails."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from airflow_provider_clarity.exceptions import (
    ClarityError,
    ClarityQuotaExceededError,
    ClarityResponseError,
    ClarityServerError,
)
from airflow_provider_clarity.hooks.clarity import (
    ClarityHook,
)
from airflow_provider_clarity.testing.emulator import ClarityEmulator
from tests.hooks.fixtures import CONN_ID, PROJECT, exception_texts, logged

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
