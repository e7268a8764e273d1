"""Helpers of the wasted-call tests: token pieces, a leak check, one charged call, a TLS server."""

from __future__ import annotations

import http.server
import ssl
import subprocess
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

from airflow_provider_clarity.hooks.clarity import ClarityHook
from airflow_provider_clarity.quota import MemoryLedgerStore, QuotaLedger

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


# ------------------------------------------------------------------ refused before a call


def other_audience_token(now: datetime) -> str:
    claims = {
        "iss": "clarity",
        "aud": "clarity.web",
        "sub": PROJECT,
        "exp": int((now + timedelta(days=3)).timestamp()),
    }
    return jwt.encode(claims, "some-key-of-at-least-32-bytes-long!", algorithm="HS256")


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


def _with_store(store: MemoryLedgerStore) -> Any:
    for_hook = QuotaLedger.for_hook.__func__  # type: ignore[attr-defined]

    def with_memory_store(cls: type[QuotaLedger], hook: Any, **kwargs: Any) -> QuotaLedger:
        kwargs.setdefault("store", store)
        return for_hook(cls, hook, **kwargs)

    return classmethod(with_memory_store)
