"""Helpers of the quota tests: a settable clock, a hook's settings, spending calls."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from airflow_provider_clarity.hooks.clarity import ClarityRequest
from airflow_provider_clarity.quota import (
    QuotaLedger,
    QuotaSettings,
    Window,
)

T0 = datetime(2025, 3, 14, 10, 0, 0, tzinfo=UTC)


class Clock:
    """A settable clock for the ledger."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def at(self, year: int, month: int, day: int, hour: int, minute: int, second: int) -> datetime:
        self.now = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class FakeHook:
    """The connection settings a ClarityHook exposes."""

    project_id: str = "demo-project"
    daily_limit: int = 10
    reserve: int = 0
    quota_window: str = "utc_day"
    rolling_window_seconds: int = 86400

    @property
    def quota_settings(self) -> QuotaSettings:
        return QuotaSettings(
            self.project_id,
            daily_limit=self.daily_limit,
            reserve=self.reserve,
            window=Window(self.quota_window),
            rolling_window_seconds=self.rolling_window_seconds,
        )


def os_request() -> ClarityRequest:
    return ClarityRequest.build(1, ["OS"])


def spend(ledger: QuotaLedger, n: int, outcome: str = "200") -> None:
    for _ in range(n):
        ledger.before_call(os_request())
        ledger.after_call(os_request(), outcome)
