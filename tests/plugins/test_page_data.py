"""The quota page's report and HTML, from ledger documents written by the real QuotaLedger."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_clarity.plugins import quota_page
from airflow_provider_clarity.plugins.page_data import parse_caller, project_report, report
from airflow_provider_clarity.quota import MemoryLedgerStore, QuotaLedger, ledger_key

NOON = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def _ledger(store: MemoryLedgerStore, at: datetime, **kwargs: Any) -> QuotaLedger:
    return QuotaLedger("demo-project", store=store, clock=lambda: at, **kwargs)


def _spend(store: MemoryLedgerStore, at: datetime, outcome: str = "200", **kwargs: Any) -> None:
    ledger = _ledger(store, at, caller=kwargs.pop("caller", "d/t/manual__1/-1"), **kwargs)
    ledger.before_call(None)
    ledger.after_call(None, outcome)


def test_report_agrees_with_the_ledger_and_splits_windows() -> None:
    store = MemoryLedgerStore()
    _spend(store, NOON - timedelta(days=1), daily_limit=4, reserve=1)  # yesterday: not counted
    _spend(store, NOON - timedelta(hours=3), daily_limit=4, reserve=1, caller="d/t/r/2")
    _spend(store, NOON - timedelta(hours=2), "401", daily_limit=4, reserve=1)
    _spend(store, NOON - timedelta(hours=1), "500", daily_limit=4, reserve=1)
    assert store.data is not None
    ledger = _ledger(store, NOON, daily_limit=4, reserve=1)

    got = project_report(store.data, NOON, ui_base="/airflow")

    assert (got["capacity"], got["used"], got["remaining"]) == (3, 2, ledger.remaining())
    assert got["next_reset"] == NOON.isoformat()  # a call is available now
    assert [(c["outcome"], c["counted"], c["in_window"]) for c in got["calls"]] == [
        ("200", False, False),
        ("200", True, True),
        ("401", False, True),
        ("500", True, True),
    ]
    assert got["calls"][1]["caller"]["url"] == "/airflow/dags/d/runs/r/tasks/t/mapped/2"
    # The ledger's UTC day starts at midnight plus its 60 s margin, as its usage report says.
    assert got["window_start"] == "2026-03-04T00:01:00+00:00"
    assert got["exhausted_until"] is None and got["degraded_until"] is None


def test_spent_project_shows_when_the_next_call_is_possible() -> None:
    store = MemoryLedgerStore()
    _spend(store, NOON, "429")
    assert store.data is not None

    got = project_report(store.data, NOON + timedelta(minutes=1))

    assert got["remaining"] == 0
    assert got["exhausted_until"] == "2026-03-05T00:01:00+00:00" == got["next_reset"]
    html = quota_page.render({"generated_at": NOON.isoformat(), "projects": [got]})
    assert "Exhausted until 2026-03-05 00:01:00 UTC" in html


def test_degraded_until_from_a_newer_ledger_is_shown_while_it_lasts() -> None:
    store = MemoryLedgerStore()
    _spend(store, NOON)
    assert store.data is not None
    document = {**store.data, "degraded_until": (NOON + timedelta(minutes=30)).isoformat()}

    now = project_report(document, NOON)
    later = project_report(document, NOON + timedelta(hours=1))

    assert now["degraded_until"] == "2026-03-04T12:30:00+00:00"
    assert later["degraded_until"] is None
    html = quota_page.render({"generated_at": NOON.isoformat(), "projects": [now]})
    assert "Clarity degraded until 2026-03-04 12:30:00 UTC" in html


def test_rolling_window_timeline_ends_now() -> None:
    store = MemoryLedgerStore()
    _spend(store, NOON - timedelta(minutes=30), window="rolling", rolling_window_seconds=3600)
    assert store.data is not None

    got = project_report(store.data, NOON)

    assert got["window_start"] == (NOON - timedelta(hours=1)).isoformat()
    assert got["window_end"] == NOON.isoformat()
    assert [c["counted"] for c in got["calls"]] == [True]


@pytest.mark.parametrize(
    ("label", "url"),
    [
        (
            "dag/task/manual__2026-03-04T12:00:00+00:00/-1",
            "/dags/dag/runs/manual__2026-03-04T12%3A00%3A00%2B00%3A00/tasks/task",
        ),
        ("dag/task/run/with/slash/3", "/dags/dag/runs/run%2Fwith%2Fslash/tasks/task/mapped/3"),
        ("outside-airflow", None),
        ("someone/by/hand", None),
    ],
)
def test_parse_caller_links_task_instances_only(label: str, url: str | None) -> None:
    assert parse_caller(label)["url"] == url


def test_page_escapes_what_the_ledger_holds_and_reports_broken_ledgers() -> None:
    store = MemoryLedgerStore()
    _spend(store, NOON, caller="<script>alert(1)</script>")
    data = report(
        [(ledger_key("demo-project"), json.dumps(store.data)), ("clarity_quota__broken", "[1]")],
        NOON,
    )

    html = quota_page.render(data)

    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    broken = next(p for p in data["projects"] if p["variable_key"] == "clarity_quota__broken")
    assert "is not a JSON object" in broken["error"]
    assert "Ledger unreadable" in html
