"""The quota page's HTML: a call is drawn the way the ledger counts it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow_provider_clarity.plugins import quota_page
from airflow_provider_clarity.plugins.page_data import project_report
from airflow_provider_clarity.quota import MemoryLedgerStore, QuotaLedger

NOON = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
GREY, ORANGE = "#a0aec0", "#dd6b20"


def _spend(store: MemoryLedgerStore, at: datetime, outcome: str) -> None:
    ledger = QuotaLedger("demo-project", store=store, clock=lambda: at, caller="d/t/r/-1")
    ledger.before_call(None)
    ledger.after_call(None, outcome)


def test_a_call_that_never_reached_clarity_is_drawn_as_not_charged() -> None:
    store = MemoryLedgerStore()
    _spend(store, NOON - timedelta(hours=3), "dns_error")
    _spend(store, NOON - timedelta(hours=2), "401")
    _spend(store, NOON - timedelta(hours=1), "500")
    assert store.data is not None

    got = project_report(store.data, NOON)
    html = quota_page.render({"generated_at": NOON.isoformat(), "projects": [got]})

    assert [(c["outcome"], c["counted"]) for c in got["calls"]] == [
        ("dns_error", False),
        ("401", False),
        ("500", True),
    ]
    for outcome, colour in (("dns_error", GREY), ("401", GREY), ("500", ORANGE)):
        assert f'<span class="dot" style="background:{colour}"></span>{outcome}</td>' in html
