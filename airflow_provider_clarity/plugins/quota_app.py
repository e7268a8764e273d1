"""The FastAPI app behind the "Clarity quota" page, mounted by the api-server at ``/clarity-quota``.

It serves these two routes only (FastAPI's ``/docs``, ``/redoc`` and ``/openapi.json`` are
off). Both depend on Airflow's own ``requires_access_variable("GET")``: the auth manager
decides, from the JWT in the ``Authorization: Bearer`` header or, for the page the UI shows in
its iframe, the ``_token`` cookie. Anonymous requests get 401, users who may not read
Variables 403.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse

from airflow_provider_clarity.plugins import quota_page
from airflow_provider_clarity.plugins.page_data import report
from airflow_provider_clarity.quota import VARIABLE_PREFIX

log = logging.getLogger(__name__)


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


def _schedule(now: datetime, user: Any) -> tuple[Any, str | None]:
    """The active exports' coming runs (``quota_schedule``), or why they could not be read.

    Only DAGs ``user`` may read are named (the auth manager's ``get_authorized_dag_ids``);
    the calls of the others are counted as ``hidden_calls``.
    """
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.utils.session import create_session

    from airflow_provider_clarity.plugins.quota_schedule import read_schedule

    try:
        with create_session() as session:
            readable = get_auth_manager().get_authorized_dag_ids(
                user=user, method="GET", session=session
            )
            return read_schedule(now, session=session, readable=readable), None
    except Exception as err:  # the ledgers must still show when the schedule cannot be read
        log.warning("Clarity quota page: the DAG schedules could not be read", exc_info=True)
        # Only the class: a message could quote a connection; the log has the traceback.
        return None, f"{type(err).__name__} (see the api-server log)"


def current_report(user: Any) -> dict[str, Any]:
    """The endpoint's answer: every project's ledger and its calls still scheduled, now."""
    now = datetime.now(UTC)
    schedule, error = _schedule(now, user)
    return report(
        _ledger_variables(), now, ui_base=_ui_base(), schedule=schedule, schedule_error=error
    )


def create_app() -> FastAPI:
    """Build the app; Airflow's security module is imported here, inside the api-server."""
    from airflow.api_fastapi.core_api.security import get_user, requires_access_variable

    app = FastAPI(
        title="Clarity quota",
        description=(
            "The airflow-provider-clarity quota ledgers: calls per project in the current "
            "window, calls remaining, next reset, calls still scheduled. Needs permission to "
            "read Variables."
        ),
        dependencies=[Depends(requires_access_variable("GET"))],
        # FastAPI's own pages would answer anonymous users: the dependency above guards
        # only the routes declared here, so every other route is off.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    the_user = Depends(get_user)  # the same user the access check resolved (cached per request)

    @app.get("/", response_class=HTMLResponse, summary="The Clarity quota page")
    def page(user: Any = the_user) -> HTMLResponse:
        return HTMLResponse(quota_page.render(current_report(user)))

    @app.get("/api/projects", summary="Every project's quota ledger, as JSON")
    def projects(user: Any = the_user) -> dict[str, Any]:
        return current_report(user)

    return app
