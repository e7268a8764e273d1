"""Helpers of the emulator tests: the payload's block names, a settable clock, a GET helper."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import requests

from airflow_provider_clarity.testing import ClarityEmulator

METRIC_BLOCKS = [
    "DeadClickCount",
    "ExcessiveScroll",
    "RageClickCount",
    "QuickbackClick",
    "ScriptErrorCount",
    "ErrorClickCount",
    "ScrollDepth",
    "Traffic",
    "EngagementTime",
]
SNAPSHOT_BLOCKS = ["Browser", "Device", "OS", "Country", "PageTitle", "ReferrerUrl", "PopularPages"]
CLICK_FIELDS = {
    "sessionsCount",
    "sessionsWithMetricPercentage",
    "sessionsWithoutMetricPercentage",
    "pagesViews",
    "subTotal",
}
COUNT_FIELDS = {
    "totalSessionCount",
    "totalBotSessionCount",
    "distinctUserCount",
    "distantUserCount",
    "totalTime",
    "activeTime",
    "sessionsCount",
    "pagesViews",
    "subTotal",
    "visitsCount",
}
PERCENT_FIELDS = {
    "pagesPerSessionPercentage",
    "PagesPerSessionPercentage",
    "averageScrollDepth",
    "sessionsWithMetricPercentage",
    "sessionsWithoutMetricPercentage",
}
PROJECT = "demo-project"


class FakeClock:
    """A settable clock for the emulator's quota window and token expiry."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def get(
    emulator: ClarityEmulator,
    token: str | None,
    *,
    timeout: float = 10,
    **params: Any,
) -> requests.Response:
    """One GET of the live-insights endpoint, as the vendor's Python sample makes it."""
    headers = {"Content-type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    params.setdefault("numOfDays", "1")
    return requests.get(emulator.endpoint_url, params=params, headers=headers, timeout=timeout)


def dims(*names: str) -> dict[str, Any]:
    return {f"dimension{i}": name for i, name in enumerate(names, start=1)}


def block(payload: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return next(b["information"] for b in payload if b["metricName"] == name)
