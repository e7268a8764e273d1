"""The FastAPI app behind the "Clarity quota" page, mounted by the api-server at ``/clarity-quota``.

Both routes depend on Airflow's own ``requires_access_variable("GET")``: the auth manager
decides, from the JWT in the ``Authorization: Bearer`` header or, for the page the UI shows in
its iframe, the ``_token`` cookie. Anonymous requests get 401, users who may not read
Variables 403.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse

from airflow_provider_clarity.plugins import quota_page
from airflow_provider_clarity.plugins.quota_report import report
from airflow_provider_clarity.quota import VARIABLE_PREFIX


def _ui_base() -> str:
    """The path the Airflow UI lives under (``[api] base_url``), for task instance links."""
    from urllib.parse import urlparse

    from airflow.configuration import conf

    return urlparse(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")


def _ledger_variables() -> list[tuple[str, str | None]]:
    """Every ledger Variable in the metadata DB (decrypted), read through the ORM."""
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(select(Variable).where(Variable.key.startswith(VARIABLE_PREFIX)))
        return [(row.key, row.val) for row in rows]


def current_report() -> dict[str, Any]:
    """The endpoint's answer: every project's ledger, now."""
    return report(_ledger_variables(), datetime.now(UTC), ui_base=_ui_base())


def create_app() -> FastAPI:
    """Build the app; Airflow's security module is imported here, inside the api-server."""
    from airflow.api_fastapi.core_api.security import requires_access_variable

    app = FastAPI(
        title="Clarity quota",
        description=(
            "The airflow-provider-clarity quota ledgers: calls per project in the current "
            "window, calls remaining, next reset. Needs permission to read Variables."
        ),
        dependencies=[Depends(requires_access_variable("GET"))],
    )

    @app.get("/", response_class=HTMLResponse, summary="The Clarity quota page")
    def page() -> HTMLResponse:
        return HTMLResponse(quota_page.render(current_report()))

    @app.get("/api/projects", summary="Every project's quota ledger, as JSON")
    def projects() -> dict[str, Any]:
        return current_report()

    return app
