"""Not one wasted call, not one leaked token: mistakes caught before a call is spent."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_clarity.connection.token import clean_token, scrub
from airflow_provider_clarity.exceptions import (
    ClarityAuthError,
    ClarityRequestError,
    ClarityServerError,
)
from airflow_provider_clarity.hooks.clarity import ClarityHook
from airflow_provider_clarity.quota import MemoryLedgerStore
from airflow_provider_clarity.testing.emulator import ClarityEmulator
from airflow_provider_clarity.version_compat import AirflowFailException
from tests.wasted_calls.fixtures import (
    CONN_ID,
    PROJECT,
    assert_no_token,
    call,
    charged,
    everything_about,
    other_audience_token,
    untrusted_tls_server,
)

# ------------------------------------------------------------------ the pasted token


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda t: t[:80] + "\n" + t[80:], id="line-break-inside"),
        pytest.param(lambda t: t[:200] + "\r\n  " + t[200:] + "\n", id="crlf-and-indent"),
        pytest.param(lambda t: t.replace(".", "\n.", 1), id="break-before-a-dot"),
        pytest.param(lambda t: f"\u201c{t}\u201d", id="typographic-quotes"),
        pytest.param(lambda t: f"'{t}'", id="shell-quotes"),
        pytest.param(lambda t: f"Bearer {t}", id="bearer-prefix"),
        pytest.param(lambda t: f"Authorization: Bearer {t}", id="whole-header"),
        pytest.param(lambda t: f"\ufeff {t}\u200b", id="bom-and-zero-width"),
    ],
)
def test_a_mangled_paste_is_cleaned_and_costs_one_good_call(
    mangle: Callable[[str], str],
    clarity_emulator: ClarityEmulator,
    token: str,
    connect: Callable[..., None],
    store: MemoryLedgerStore,
    task_log: Callable[[], str],
) -> None:
    connect(clarity_emulator.base_url, mangle(token), project_id=PROJECT)
    ok, message = ClarityHook(CONN_ID).test_connection()
    assert ok, message
    result, ledger = call(store)
    assert isinstance(result, list), result
    assert [r.status for r in clarity_emulator.requests] == [200]
    header = clarity_emulator.requests[0].headers["Authorization"]
    assert header == "Bearer <redacted>"  # one scheme word, not "Bearer Bearer"
    assert charged(ledger) == 1
    assert_no_token(token, task_log(), message)


@pytest.mark.parametrize(
    ("mangle", "named"),
    [
        (lambda t: t[:50] + "\u201d" + t[50:], "RIGHT DOUBLE QUOTATION MARK"),
        (lambda t: t[:300] + "\u00e9" + t[300:], "LATIN SMALL LETTER E WITH ACUTE"),
        (lambda t: t[:10] + "\x00" + t[10:], "U+0000"),
    ],
)
def test_a_paste_no_token_could_be_is_refused_offline_without_showing_it(
    mangle: Callable[[str], str],
    named: str,
    clarity_emulator: ClarityEmulator,
    token: str,
    connect: Callable[..., None],
    store: MemoryLedgerStore,
    task_log: Callable[[], str],
) -> None:
    connect(clarity_emulator.base_url, mangle(token), project_id=PROJECT)
    ok, message = ClarityHook(CONN_ID).test_connection()
    assert not ok
    assert named in message
    result, _ = call(store)
    assert isinstance(result, ClarityAuthError)
    assert named in str(result) and "No Clarity call was made" in str(result)
    assert clarity_emulator.requests == []
    assert store.data is None, "nothing was recorded in the ledger"
    assert_no_token(token, everything_about(result), message, task_log())


def test_a_request_that_cannot_be_encoded_leaks_nothing_and_is_not_charged(
    clarity_emulator: ClarityEmulator,
    token: str,
    connect: Callable[..., None],
    store: MemoryLedgerStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # http.client refuses a header and quotes it in its ValueError: whatever the reason,
    # that text must never reach the user, and nothing was sent.
    import http.client

    def refuse(self: Any, header: str, *values: Any) -> None:
        raise ValueError(f"Invalid header value {values!r}")

    connect(clarity_emulator.base_url, token, project_id=PROJECT)
    monkeypatch.setattr(http.client.HTTPConnection, "putheader", refuse)
    result, ledger = call(store)
    assert isinstance(result, ClarityRequestError)
    assert isinstance(result, AirflowFailException)
    assert "no Clarity call was spent" in str(result)
    assert [c["outcome"] for c in ledger.entries()] == ["not_sent"]
    assert charged(ledger) == 0
    assert_no_token(token, everything_about(result))


def test_scrub_removes_every_long_piece_of_the_token(token: str) -> None:
    text = f"echo {token} and {token[100:140]} and {token[5:21]} and {token[:15]} end"
    cleaned = scrub(text, token)
    assert_no_token(token, cleaned)
    assert token[:15] in cleaned, "a piece shorter than the scrub run is left alone"
    assert cleaned.startswith("echo [token removed] and [token removed] and [token removed]")
    assert clean_token(None).token is None


@pytest.mark.parametrize(
    ("host", "extra", "password", "expected"),
    [
        (None, {"project_id": "another-project"}, None, "is for project 'demo-project'"),
        (None, {}, "audience", "not a Clarity Data Export token"),
        ("{base}/some/path", {}, None, "has a path"),
        ("{base}?x=1", {}, None, "has a path"),
    ],
    ids=["project-mismatch", "wrong-audience", "host-with-path", "host-with-query"],
)
def test_mistakes_caught_before_a_call(
    host: str | None,
    extra: dict[str, str],
    password: str | None,
    expected: str,
    clarity_emulator: ClarityEmulator,
    token: str,
    connect: Callable[..., None],
    store: MemoryLedgerStore,
) -> None:
    secret = other_audience_token(datetime.now(UTC)) if password == "audience" else token
    connect(
        (host or clarity_emulator.base_url).format(base=clarity_emulator.base_url), secret, **extra
    )
    ok, message = ClarityHook(CONN_ID).test_connection()
    assert not ok and expected in message
    result, _ = call(store)
    assert isinstance(result, ClarityRequestError | ClarityAuthError), result
    assert expected in str(result) and "No Clarity call was made" in str(result)
    assert clarity_emulator.requests == []
    assert store.data is None


def test_the_token_s_project_is_the_default_project(
    clarity_emulator: ClarityEmulator,
    token: str,
    connect: Callable[..., None],
    store: MemoryLedgerStore,
) -> None:
    connect(clarity_emulator.base_url, token)  # no project_id extra
    result, ledger = call(store)
    assert isinstance(result, list)
    assert ledger.project_id == PROJECT
    assert store.data is not None and store.data["project_id"] == PROJECT


def test_the_whole_endpoint_pasted_as_host_is_cut_back_to_the_origin(
    clarity_emulator: ClarityEmulator,
    token: str,
    connect: Callable[..., None],
    store: MemoryLedgerStore,
) -> None:
    connect(f"{clarity_emulator.endpoint_url}?numOfDays=1", token)
    result, ledger = call(store)
    assert isinstance(result, list)
    assert [(r.path, r.status) for r in clarity_emulator.requests] == [
        ("/export-data/api/v1/project-live-insights", 200)
    ]
    assert charged(ledger) == 1


# ------------------------------------------------------------------ never reached Clarity


def test_a_host_that_does_not_resolve_is_named_and_not_charged(
    clarity_emulator: ClarityEmulator,
    token: str,
    connect: Callable[..., None],
    store: MemoryLedgerStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The machine's only resolver is off loopback, and tests talk to 127.0.0.1 only; so the
    # resolver's answer is the one thing simulated here. urllib3 and requests are real.
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "clarity.example.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    connect("https://clarity.example.invalid", token)
    result, ledger = call(store, max_retries=2)
    assert isinstance(result, ClarityServerError)
    assert "'https://clarity.example.invalid' did not resolve (DNS)" in str(result)
    assert "no call was spent" in str(result)
    assert [c["outcome"] for c in ledger.entries()] == ["dns_error"] * 3
    assert charged(ledger) == 0, "nine of ten calls were spent here before"
    assert_no_token(token, everything_about(result))


def test_tls_to_a_plain_http_port_says_so_and_is_not_charged(
    clarity_emulator: ClarityEmulator,
    token: str,
    connect: Callable[..., None],
    store: MemoryLedgerStore,
) -> None:
    # "127.0.0.1:PORT" without a scheme means https, but the emulator speaks plain http.
    connect(clarity_emulator.base_url.removeprefix("http://"), token)
    result, ledger = call(store)
    assert isinstance(result, ClarityRequestError) and isinstance(result, AirflowFailException)
    assert "TLS handshake" in str(result) and "does not speak TLS" in str(result)
    assert "http://127.0.0.1:<port>" in str(result)
    assert [c["outcome"] for c in ledger.entries()] == ["tls_error"]
    assert charged(ledger) == 0
    assert clarity_emulator.requests == [] or all(
        r.status is None for r in clarity_emulator.requests
    )


def test_an_untrusted_certificate_names_the_verify_extra_and_is_not_charged(
    tmp_path: Path, token: str, connect: Callable[..., None], store: MemoryLedgerStore
) -> None:
    with untrusted_tls_server(tmp_path) as url:
        connect(url, token)
        result, ledger = call(store)
    assert isinstance(result, ClarityRequestError)
    assert "certificate verify failed" in str(result)
    assert "'verify' extra" in str(result)
    assert [c["outcome"] for c in ledger.entries()] == ["tls_error"]
    assert charged(ledger) == 0
    assert_no_token(token, everything_about(result))
