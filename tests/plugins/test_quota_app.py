"""The quota page's FastAPI app, in process, behind Airflow's real auth manager (simple).

Requests carry the JWT the api-server would issue (``generate_jwt``), so the access check,
``get_authorized_dag_ids`` and the routes run as they do behind ``airflow api-server``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ANONYMOUS_STATUSES = {401, 403, 404}


@pytest.fixture(scope="module")
def auth(airflow_db: Path) -> Any:
    from airflow.api_fastapi.app import create_auth_manager

    return create_auth_manager()


@pytest.fixture
def client(auth: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from airflow_provider_clarity.plugins.quota_app import create_app

    with TestClient(create_app()) as test_client:
        yield test_client


def token(auth: Any, role: str = "admin", username: str = "admin") -> dict[str, str]:
    """The ``Authorization`` header of a simple-auth-manager user with ``role``."""
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    jwt = auth.generate_jwt(SimpleAuthManagerUser(username=username, role=role))
    return {"Authorization": f"Bearer {jwt}"}


def test_every_route_of_the_app_refuses_anonymous_users(client: Any) -> None:
    routes = [r for r in client.app.routes if getattr(r, "path", None) is not None]
    assert {r.path for r in routes} >= {"/", "/api/projects"}
    for route in routes:
        path = re.sub(r"\{[^}]+\}", "x", route.path)  # any path parameter
        for method in sorted(getattr(route, "methods", None) or {"GET"}):
            answer = client.request(method, path)
            assert answer.status_code in ANONYMOUS_STATUSES, (method, route.path, answer.text[:200])
    # FastAPI's own pages are not served at all, to anyone.
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect", "/openapi.json"):
        assert client.get(path).status_code == 404, path


def test_only_users_who_may_read_variables_get_the_routes(client: Any, auth: Any) -> None:
    for path in ("/", "/api/projects"):
        assert client.get(path, headers=token(auth, "viewer", "viewer")).status_code == 403
        assert client.get(path, headers=token(auth)).status_code == 200
    for path in ("/docs", "/openapi.json"):  # not even for an admin
        assert client.get(path, headers=token(auth)).status_code == 404


@pytest.fixture
def ledgers(airflow_db: Path) -> Iterator[list[str]]:
    """Ledger Variables put in the suite's DB by a test (their keys), removed afterwards."""
    from airflow.models.variable import Variable

    keys: list[str] = []
    yield keys
    for key in keys:
        Variable.delete(key)


def _put_ledger(keys: list[str], project_id: str, caller: str) -> None:
    from airflow.models.variable import Variable

    from airflow_provider_clarity.quota import MemoryLedgerStore, QuotaLedger, ledger_key

    store = MemoryLedgerStore()
    ledger = QuotaLedger(project_id, store=store, caller=caller)
    ledger.before_call(None)
    ledger.after_call(None, "200")
    Variable.set(ledger_key(project_id), json.dumps(store.data))
    keys.append(ledger_key(project_id))


def test_the_page_pages_names_only_readable_dags_and_shows_a_pool_fault(
    client: Any, auth: Any, ledgers: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.models.pool import Pool

    for n in range(55):
        _put_ledger(ledgers, f"app-project-{n:02}", f"visible_dag/t/run_{n}/-1")
    _put_ledger(ledgers, "app-secret-project", "secret_dag/t/run_1/-1")
    # The auth manager says which DAGs this user may read: not secret_dag.
    monkeypatch.setattr(
        type(auth), "get_authorized_dag_ids", lambda self, **kwargs: {"visible_dag"}
    )
    # Tasks on several hosts, no shared lock dir, and a 4-slot pool: a fault.
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    monkeypatch.delenv("AIRFLOW__CLARITY__LEDGER_LOCK_DIR", raising=False)
    Pool.create_or_update_pool("clarity_api", 4, "Clarity API calls", include_deferred=False)
    try:
        first = client.get("/api/projects", headers=token(auth)).json()
        second = client.get("/api/projects?page=2", headers=token(auth)).json()
        html = client.get("/?page=2", headers=token(auth)).text
        refused = client.get("/api/projects?page=0", headers=token(auth)).status_code
    finally:
        Pool.delete_pool("clarity_api")

    pages = [first] + [
        client.get(f"/api/projects?page={n}", headers=token(auth)).json()
        for n in range(2, first["pages"] + 1)
    ]
    ids = [p["project_id"] for page in pages for p in page["projects"]]
    assert [i for i in ids if i.startswith("app-")] == [f"app-project-{n:02}" for n in range(55)]
    assert len(first["projects"]) == 50 and first["page"] == 1 and second["page"] == 2
    assert first["hidden_projects"] == second["hidden_projects"] == 1
    assert "secret" not in json.dumps(first) + json.dumps(second) + html
    assert first["pool_fault"].startswith("Fault: the pool 'clarity_api' has 4 slots")
    assert 'class="badge error pool-fault">Fault: the pool' in html
    assert 'href="?page=1"' in html
    assert refused == 422
