"""The quota page's FastAPI app, in process, behind Airflow's real auth manager (simple).

Requests carry the JWT the api-server would issue (``generate_jwt``), so the access check,
``get_authorized_dag_ids`` and the routes run as they do behind ``airflow api-server``.
"""

from __future__ import annotations

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
