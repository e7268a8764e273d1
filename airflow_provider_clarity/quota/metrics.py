"""The provider's metrics, sent through Airflow's own metrics client (``Stats``).

So ``[metrics]`` decides everything: StatsD, Datadog or OpenTelemetry, the prefix (``airflow``
by default), allow and block lists; with metrics off (the default) Airflow's client sends
nothing. Each metric goes out under two names, as Airflow's own pool metrics do: one per
project (``clarity.calls_remaining.<project_id>``), for plain StatsD, which has no tags, and
one with tags (``clarity.calls_remaining`` with ``project_id``), for Datadog, InfluxDB-style
StatsD tags and OpenTelemetry. docs/metrics.md lists the names and tags.

A metric never fails a call or a task: an error while sending one is logged at debug level
and dropped. Everything here is cheap to import (Stats is imported when first used).
"""

from __future__ import annotations

import logging
import re
from typing import Any

log = logging.getLogger(__name__)

PREFIX = "clarity"
_NOT_IN_A_NAME = re.compile(r"[^a-zA-Z0-9_.-]")


def _send(kind: str, name: str, value: float, project_id: str, **tags: str) -> None:
    try:
        from airflow_provider_clarity.version_compat import metrics_client

        stats: Any = metrics_client()
        per_project = f"{PREFIX}.{name}.{_NOT_IN_A_NAME.sub('_', project_id)}"
        tagged = {"project_id": project_id, **tags}
        for stat, stat_tags in ((per_project, tags or None), (f"{PREFIX}.{name}", tagged)):
            if kind == "gauge":
                stats.gauge(stat, value, tags=stat_tags)
            else:
                stats.incr(stat, count=int(value), tags=stat_tags)
    except Exception:  # a metric must never cost a call or fail a task
        log.debug("Could not send the metric %s.%s", PREFIX, name, exc_info=True)


def ledger_changed(project_id: str, *, spent: int, remaining: int) -> None:
    """After every ledger write: the calls counted in the window and the calls left."""
    _send("gauge", "calls_spent", spent, project_id)
    _send("gauge", "calls_remaining", remaining, project_id)


def rate_limited(project_id: str) -> None:
    """Clarity answered 429: calls made outside Airflow spent the project's quota."""
    _send("incr", "rate_limited", 1, project_id)


def uncharged(project_id: str, outcome: str) -> None:
    """An attempt Clarity does not count (a 401 or 403, or one that never reached it)."""
    _send("incr", "calls_uncharged", 1, project_id, outcome=outcome)


def waiting(project_id: str, seconds: float) -> None:
    """A task waits for the quota reset: one wait, and the seconds until it looks again."""
    _send("incr", "quota_waits", 1, project_id)
    _send("incr", "quota_wait_seconds", max(0, round(seconds)), project_id)


def degraded(project_id: str) -> None:
    """A degraded cool-down started: Clarity failed every attempt with a 5xx."""
    _send("incr", "degraded_cooldowns", 1, project_id)


def snapshot_reused(project_id: str, source: str) -> None:
    """A kept answer served a task instead of a call: ``kept`` (this task instance's own,
    on a retry or re-run) or ``shared`` (another task's answer to the same request)."""
    _send("incr", "snapshots_reused", 1, project_id, source=source)
