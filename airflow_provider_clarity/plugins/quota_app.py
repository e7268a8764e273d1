"""The FastAPI app behind the "Clarity quota" page, mounted by the api-server at ``/clarity-quota``.

It serves the page and its JSON, nothing else (FastAPI's ``/docs``, ``/redoc`` and
``/openapi.json`` are off); both take ``?page=N``. Both depend on Airflow's own
``requires_access_variable("GET")``: the auth manager decides, from the JWT in the
``Authorization: Bearer`` header or, for the page the UI shows in its iframe, the ``_token``
cookie. Anonymous requests get 401, users who may not read Variables 403. DAGs the user may
not read are never named (``page_data``'s rule).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, FastAPI, Query
from fastapi.responses import HTMLResponse

from airflow_provider_clarity.plugins import quota_page
from airflow_provider_clarity.plugins.page_data import PER_PAGE, report
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


def _readable(user: Any) -> frozenset[str]:
    """The DAGs ``user`` may read (the auth manager's ``get_authorized_dag_ids``).

    :raises Exception: when the auth manager cannot tell; the caller then names no DAG.
    """
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.utils.session import create_session

    with create_session() as session:
        return frozenset(
            get_auth_manager().get_authorized_dag_ids(user=user, method="GET", session=session)
        )


def _schedule(now: datetime, readable: frozenset[str]) -> tuple[Any, str | None]:
    """The active exports' coming runs (``quota_schedule``), or why they could not be read.

    Only DAGs in ``readable`` are named; the calls of the others are counted as ``hidden_calls``.
    """
    from airflow.utils.session import create_session

    from airflow_provider_clarity.plugins.quota_schedule import read_schedule

    try:
        with create_session() as session:
            return read_schedule(now, session=session, readable=readable), None
    except Exception as err:  # the ledgers must still show when the schedule cannot be read
        log.warning("Clarity quota page: the DAG schedules could not be read", exc_info=True)
        # Only the class: a message could quote a connection; the log has the traceback.
        return None, f"{type(err).__name__} (see the api-server log)"


def _connections() -> dict[str, Any]:
    """Each project's clarity connection settings (``connection.known``): what exports use."""
    from airflow_provider_clarity.connection.known import by_project, clarity_connections

    try:
        return dict(by_project(clarity_connections()))
    except Exception:  # the stored settings still show, marked as such
        log.warning("Clarity quota page: the clarity connections could not be read", exc_info=True)
        return {}


def current_report(user: Any, page: int = 1) -> dict[str, Any]:
    """The endpoint's answer: page ``page`` of every project's ledger and its calls still
    scheduled, now, as ``user`` may see it (``page_data``'s rule for DAGs they may not read)."""
    from airflow_provider_clarity.quota.context import pool_fault

    now = datetime.now(UTC)
    try:
        readable = _readable(user)
    except Exception:  # name no DAG rather than every DAG
        log.warning("Clarity quota page: the user's readable DAGs are unknown", exc_info=True)
        readable = frozenset()
    schedule, error = _schedule(now, readable)
    return report(
        _ledger_variables(),
        now,
        ui_base=_ui_base(),
        schedule=schedule,
        schedule_error=error,
        connections=_connections(),
        readable=readable,
        page=page,
        pool_fault=pool_fault(),
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

    page_number = Query(1, ge=1, alias="page", description=f"{PER_PAGE} projects a page")

    @app.get("/", response_class=HTMLResponse, summary="The Clarity quota page")
    def page(user: Any = the_user, number: int = page_number) -> HTMLResponse:
        return HTMLResponse(quota_page.render(current_report(user, number)))

    @app.get("/api/projects", summary="Every project's quota ledger, as JSON")
    def projects(user: Any = the_user, number: int = page_number) -> dict[str, Any]:
        return current_report(user, number)

    return app
