"""Not one wasted call, not one leaked token: the paths real users hit (issue 10).

Every case runs against the emulator over a real socket (or a real TLS server on
loopback) and counts what matters: requests the emulator received, attempts the quota
ledger charges, and whether any 24-character piece of the token shows up anywhere a user
or a log could see it.
"""

from __future__ import annotations

import functools
import http.server
import json
import socket
import ssl
import subprocess
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest

from airflow_provider_clarity.exceptions import (
    ClarityAuthError,
    ClarityDegradedError,
    ClarityRequestError,
    ClarityResponseError,
    ClarityServerError,
)
from airflow_provider_clarity.hooks.clarity import ClarityHook
from airflow_provider_clarity.operators.export import ClarityExportOperator
from airflow_provider_clarity.quota import MemoryLedgerStore, QuotaLedger
from airflow_provider_clarity.request import ClarityRequest
from airflow_provider_clarity.testing.emulator import ClarityEmulator
from airflow_provider_clarity.token import clean_token, scrub
from airflow_provider_clarity.version_compat import AirflowFailException, AirflowRescheduleException
from tests.hooks.test_clarity import set_connection  # noqa: F401  (a fixture)
from tests.operators.test_export import FakeTaskStateStore, make_context

PROJECT = "demo-project"
CONN_ID = "clarity_wasted"


def pieces(token: str, size: int = 24) -> list[str]:
    return [token[i : i + size] for i in range(0, len(token) - size + 1)]


def assert_no_token(token: str, *texts: str) -> None:
    """Neither the token nor any 24-character piece of it is in any of ``texts``."""
    assert len(token) > 100, "a real-sized token"
    for text in texts:
        leaked = [piece for piece in pieces(token) if piece in text]
        assert not leaked, f"{len(leaked)} pieces of the token leaked: {text[:300]!r}"


def everything_about(exc: BaseException) -> str:
    """The exception as a user, a log or a traceback could show it, causes included."""
    import traceback

    texts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    cause: BaseException | None = exc
    while cause is not None:
        texts.append(repr(vars(cause)) if hasattr(cause, "__dict__") else "")
        cause = cause.__cause__ or cause.__context__
    return "\n".join(texts)


@pytest.fixture
def token(clarity_emulator: ClarityEmulator) -> str:
    return clarity_emulator.issue_token(PROJECT)


@pytest.fixture
def store() -> MemoryLedgerStore:
    return MemoryLedgerStore()


@pytest.fixture
def connect(set_connection: Callable[..., None]) -> Callable[..., None]:  # noqa: F811
    """Define this module's connection (an AIRFLOW_CONN_ environment variable)."""
    return functools.partial(set_connection, conn_id=CONN_ID)


def call(store: MemoryLedgerStore, **hook_kwargs: Any) -> tuple[Any, QuotaLedger]:
    """Call through a hook with the ledger as observer; return (result or exception, ledger)."""
    hook = ClarityHook(CONN_ID, retry_backoff=0.01, **hook_kwargs)
    ledger = QuotaLedger.for_hook(hook, store=store)
    try:
        result: Any = hook.get_live_insights(1, ["OS"], observer=ledger)
    except Exception as exc:  # the tests look at which one, and at its text
        result = exc
    return result, ledger


def charged(ledger: QuotaLedger) -> int:
    return ledger.capacity - ledger.remaining()


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


# ------------------------------------------------------------------ refused before a call


def other_audience_token(now: datetime) -> str:
    claims = {
        "iss": "clarity",
        "aud": "clarity.web",
        "sub": PROJECT,
        "exp": int((now + timedelta(days=3)).timestamp()),
    }
    return jwt.encode(claims, "some-key-of-at-least-32-bytes-long!", algorithm="HS256")


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


@contextmanager
def untrusted_tls_server(tmp_path: Path) -> Iterator[str]:
    """An HTTPS server on loopback whose certificate nobody trusts (self-signed)."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


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


# ------------------------------------------------------------------ redirects and gateways


@pytest.mark.parametrize("loop", [False, True], ids=["other-origin", "loop"])
def test_a_redirect_is_not_followed_and_says_where_it_pointed(
    loop: bool,
    clarity_emulator: ClarityEmulator,
    token: str,
    connect: Callable[..., None],
    store: MemoryLedgerStore,
) -> None:
    target = None if loop else "https://login.example.invalid/sso?next=%2Fexport&ticket=abc"
    clarity_emulator.inject_fault("redirect", permanent=True, location=target)
    connect(clarity_emulator.base_url, token)
    result, ledger = call(store)
    assert isinstance(result, ClarityRequestError)
    pointed = target.split("?")[0] if target else clarity_emulator.endpoint_url
    assert f"a redirect to {pointed})" in str(result)
    assert "ticket" not in str(result), "the query (which may hold secrets) is not shown"
    assert "not followed" in str(result)
    assert len(clarity_emulator.requests) == 1, "31 requests for a loop before"
    assert len(ledger.entries()) == 1


def test_a_gateway_echoing_the_request_leaks_no_piece_of_the_token(
    clarity_emulator: ClarityEmulator,
    token: str,
    connect: Callable[..., None],
    store: MemoryLedgerStore,
    task_log: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clarity_emulator.inject_fault("echo_gateway", count=1)
    connect(clarity_emulator.base_url, token)
    monkeypatch.setattr(QuotaLedger, "for_hook", _with_store(store))
    monkeypatch.setattr(
        ClarityExportOperator, "hook", ClarityHook(CONN_ID, max_retries=0, retry_backoff=0.01)
    )
    state = FakeTaskStateStore()
    op = ClarityExportOperator(task_id="export", clarity_conn_id=CONN_ID, dimensions=["OS"])
    with pytest.raises(ClarityServerError) as info:
        op.execute(make_context(state_store=state))
    assert "HTTP 502" in str(info.value)
    kept = json.dumps(state.values)
    assert '"status": 502' in kept and "Bad Gateway" in kept
    assert "Authorization: Bearer [token removed]" in kept, "the echo is kept, scrubbed"
    assert_no_token(token, everything_about(info.value), kept, task_log())


# ------------------------------------------------------------------ Airflow's own retries


def _dag(folder: Path, dag_id: str, body: str) -> Path:
    path = folder / f"{dag_id}.py"
    path.write_text(
        textwrap.dedent(
            f"""
            from datetime import datetime, timedelta

            from airflow.sdk import DAG

            from airflow_provider_clarity.operators.export import ClarityExportOperator

            with DAG("{dag_id}", schedule=None, start_date=datetime(2025, 1, 1), catchup=False,
                     default_args={{"retries": 2, "retry_delay": timedelta(seconds=0)}}):
            """
        )
        + textwrap.indent(textwrap.dedent(body), "    ")
    )
    return path


@pytest.fixture
def retry_setup(
    clarity_emulator: ClarityEmulator,
    airflow_db: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[dict[str, str]]:
    from airflow.models.variable import Variable

    from airflow_provider_clarity.quota import ledger_key

    projects = {"retry_401": "p-401", "retry_html": "p-html"}
    tokens = {conn: clarity_emulator.issue_token(project) for conn, project in projects.items()}
    # A 401: the emulator revoked nothing, so use a token it did not sign (same claims).
    tokens["retry_401"] = jwt.encode(
        jwt.decode(tokens["retry_401"], options={"verify_signature": False}),
        "not-the-emulator-key-but-32-bytes!",
        algorithm="HS256",
    )
    for conn, secret in tokens.items():
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn.upper()}", clarity_emulator.airflow_conn_json(secret)
        )
    for project in projects.values():
        Variable.delete(ledger_key(project))
    yield tokens
    for project in projects.values():
        Variable.delete(ledger_key(project))


def test_errors_retrying_cannot_fix_end_the_task_without_spending_airflow_retries(
    retry_setup: dict[str, str],
    airflow_db: Path,
    clarity_emulator: ClarityEmulator,
    run_dag: Any,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from airflow.models.variable import Variable

    from airflow_provider_clarity.quota import ledger_key

    dag_file = _dag(
        tmp_path,
        "clarity_no_retry",
        f"""
        ClarityExportOperator(task_id="t401", clarity_conn_id="retry_401")
        ClarityExportOperator(task_id="thtml", clarity_conn_id="retry_html",
                              destination="file://{tmp_path}/out/html.parquet")
        """,
    )
    # The html task's host answers with a sign-in page (a proxy or captive portal).
    clarity_emulator.inject_fault("html_200", count=1)
    run = run_dag(dag_file, "clarity_no_retry")
    out, err = capfd.readouterr()
    tis = {ti.task_id: ti for ti in run.get_task_instances()}
    assert {t: ti.state for t, ti in tis.items()} == {"t401": "failed", "thtml": "failed"}
    assert {t: ti.try_number for t, ti in tis.items()} == {"t401": 1, "thtml": 1}
    by_project: dict[str | None, int] = {}
    for r in clarity_emulator.requests:
        by_project[r.project] = by_project.get(r.project, 0) + 1
    assert by_project.get(None, 0) == 1, "one 401, not three"
    assert by_project.get("p-html", 0) == 1, "one unusable 200, not three"
    # The unusable answer is kept beside the destination; a re-run reads it again for free.
    kept = json.loads((tmp_path / "out" / "html.raw.json").read_text())
    assert kept["status"] == 200 and "Sign in" in kept["body"] and kept["response"] is None
    ledger = json.loads(Variable.get(ledger_key("p-401")))
    assert [c["outcome"] for c in ledger["calls"]] == ["401"]
    # Nor in the metadata DB (task instances, XCom, logs of the run, the ledger Variable).
    database = "".join(
        path.read_bytes().decode("latin-1") for path in sorted(airflow_db.glob("airflow.db*"))
    )
    assert "clarity_no_retry" in database, "the run is in this DB"
    for secret in retry_setup.values():
        assert_no_token(secret, out + err, database)


def test_an_unusable_answer_is_kept_and_re_read_for_free(
    clarity_connection: str,
    clarity_emulator: ClarityEmulator,
    tmp_path: Path,
    store: MemoryLedgerStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(QuotaLedger, "for_hook", _with_store(store))
    clarity_emulator.inject_fault("html_200", count=1)
    destination = f"file://{tmp_path}/os.parquet"
    for _ in range(2):
        with pytest.raises(ClarityResponseError, match="force_refresh=True spends a new one"):
            ClarityExportOperator(task_id="export", destination=destination).execute(make_context())
    assert len(clarity_emulator.requests) == 1, "the second run re-read the kept answer"
    result = ClarityExportOperator(
        task_id="export", destination=destination, force_refresh=True
    ).execute(make_context())
    assert result["rows"] > 0
    assert len(clarity_emulator.requests) == 2


def _with_store(store: MemoryLedgerStore) -> Any:
    for_hook = QuotaLedger.for_hook.__func__  # type: ignore[attr-defined]

    def with_memory_store(cls: type[QuotaLedger], hook: Any, **kwargs: Any) -> QuotaLedger:
        kwargs.setdefault("store", store)
        return for_hook(cls, hook, **kwargs)

    return classmethod(with_memory_store)


# ------------------------------------------------------------------ outages


@pytest.mark.clarity_emulator(count_failed_calls=True)
def test_an_outage_marks_the_project_degraded_and_one_probe_ends_it(
    clarity_emulator: ClarityEmulator,
    token: str,
    connect: Callable[..., None],
    store: MemoryLedgerStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clarity_emulator.inject_fault("server_error", permanent=True)
    connect(clarity_emulator.base_url, token, degraded_cooldown_seconds=2)
    monkeypatch.setattr(QuotaLedger, "for_hook", _with_store(store))
    monkeypatch.setattr(
        ClarityExportOperator, "hook", ClarityHook(CONN_ID, max_retries=2, retry_backoff=0.01)
    )

    def export() -> Any:
        op = ClarityExportOperator(task_id="export", clarity_conn_id=CONN_ID, deferrable=False)
        return op.execute(make_context())

    with pytest.raises(ClarityServerError):
        export()
    assert len(clarity_emulator.requests) == 3
    # Another task in the cool-down waits for its end instead of spending three attempts.
    with pytest.raises(AirflowRescheduleException) as waited:
        export()
    assert len(clarity_emulator.requests) == 3
    ledger = QuotaLedger.for_hook(ClarityHook(CONN_ID), store=store)
    assert ledger.status().degraded
    assert waited.value.reschedule_date >= ledger.status().degraded_until
    with pytest.raises(ClarityDegradedError, match="degraded_cooldown_seconds"):
        ledger.check()
    # After the cool-down, one probe: it fails, so the next cool-down starts at once.
    time.sleep(2.1)
    with pytest.raises(AirflowRescheduleException):
        export()
    assert len(clarity_emulator.requests) == 4, "the probe was one attempt, not three"
    # Clarity is back: the next probe succeeds and the project is healthy again.
    clarity_emulator.clear_faults()
    time.sleep(2.1)
    assert export()  # rows to XCom
    assert len(clarity_emulator.requests) == 5
    assert not QuotaLedger.for_hook(ClarityHook(CONN_ID), store=store).status().degraded


# ------------------------------------------------------------------ timeouts


def test_the_read_timeout_comes_from_the_connection_or_hook_params(
    clarity_emulator: ClarityEmulator,
    token: str,
    connect: Callable[..., None],
    store: MemoryLedgerStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connect(clarity_emulator.base_url, token, timeout="0.5")
    assert ClarityHook(CONN_ID).timeout == 0.5
    assert ClarityExportOperator(task_id="t", clarity_conn_id=CONN_ID).hook.timeout == 0.5
    op = ClarityExportOperator(
        task_id="t", clarity_conn_id=CONN_ID, hook_params={"timeout": 7, "max_retries": 0}
    )
    assert (op.hook.timeout, op.hook.max_retries) == (7.0, 0)
    clarity_emulator.inject_fault("slow", count=1, delay=3)
    result, ledger = call(store, max_retries=0)
    assert isinstance(result, ClarityServerError) and "no answer within 0.5 s" in str(result)
    assert [c["outcome"] for c in ledger.entries()] == ["timeout"]
    connect(clarity_emulator.base_url, token, timeout="soon")
    with pytest.raises(ClarityRequestError, match="extra 'timeout' must be a number"):
        ClarityHook(CONN_ID).check_offline()


def test_request_objects_stay_valid(token: str) -> None:
    assert ClarityRequest.build("2", "os").params() == {"numOfDays": "2", "dimension1": "OS"}
