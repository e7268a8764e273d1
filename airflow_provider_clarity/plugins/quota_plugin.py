"""``ClarityQuotaPlugin``: the "Clarity quota" page in the Airflow UI's Browse menu.

Airflow imports plugins in many processes (scheduler, workers, the CLI), so this module
imports only ``AirflowPlugin``; the FastAPI app, and Airflow's security and ORM modules with
it, are built on the first request the api-server routes to it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from airflow.plugins_manager import AirflowPlugin

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
URL_PREFIX = "/clarity-quota"


class _LazyApp:
    """An ASGI app that builds ``quota_app.create_app()`` when first called."""

    def __init__(self) -> None:
        self._app: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            from airflow_provider_clarity.plugins.quota_app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


class ClarityQuotaPlugin(AirflowPlugin):
    """The quota page (``/clarity-quota/``) and its JSON (``/clarity-quota/api/projects``)."""

    name = "clarity_quota"
    fastapi_apps = [{"app": _LazyApp(), "url_prefix": URL_PREFIX, "name": "Clarity quota"}]
    external_views = [
        {
            "name": "Clarity quota",
            "href": f"{URL_PREFIX}/",
            "url_route": "clarity-quota",
            "destination": "nav",
            "category": "browse",
        }
    ]
