"""Fixtures of the wasted-call tests: a token, a memory ledger, a connection, a retrying DAG."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import jwt
import pytest

from airflow_provider_clarity.quota import MemoryLedgerStore
from airflow_provider_clarity.testing.emulator import ClarityEmulator
from tests.hooks.fixtures import set_connection  # noqa: F401  (a fixture)
from tests.wasted_calls.fixtures import CONN_ID, PROJECT


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
