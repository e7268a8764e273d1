"""The usage report and the refusal messages a ledger's status renders."""

from __future__ import annotations

import pytest

from airflow_provider_clarity.exceptions import ClarityQuotaExceededError
from tests.quota.fixtures import spend


def test_usage_reports_who_spent_what(make, clock):
    morning = make(caller="sales/export_os/scheduled__2025-03-14/-1")
    spend(morning, 2)
    clock.advance(hours=1)
    spend(make(caller="marketing/export/manual__x/3"), 1, outcome="500")
    report = make(reserve=1).usage()
    assert report.splitlines()[0] == (
        "Clarity quota for project 'demo-project' (Variable clarity_quota__demo-project)"
    )
    assert "utc_day, resets 00:00 UTC (+60 s margin)" in report
    assert "limit:      10 calls, reserve 1 -> 9 for Airflow" in report
    assert "used:       3 in this window" in report
    assert "remaining:  6" in report
    assert "next call:  now" in report
    assert "  sales/export_os/scheduled__2025-03-14/-1: 2 call(s)" in report
    assert "    2025-03-14 10:00:00 UTC  200  numOfDays=1 dimensions=OS" in report
    assert "  marketing/export/manual__x/3: 1 call(s)" in report
    assert "    2025-03-14 11:00:00 UTC  500  numOfDays=1 dimensions=OS" in report

    clock.at(2025, 3, 15, 9, 0, 0)
    report = make().usage()
    assert "No calls in this window." in report
    assert "Earlier calls (kept 48 h), by caller:" in report


def test_usage_of_a_spent_project_shows_the_429_and_the_reset(make):
    ledger = make()
    spend(ledger, 1, outcome="429")
    report = ledger.usage()
    assert "remaining:  0" in report
    assert "exhausted:  Clarity answered 429; counted as spent until 2025-03-15 00:01:00 UTC" in (
        report
    )
    assert "next call:  2025-03-15 00:01:00 UTC" in report


def test_check_message_names_the_callers_and_the_reset(make):
    spend(make(caller="a/big_spender/r/-1"), 6)
    spend(make(caller="b/small/r/-1"), 3)
    ledger = make(caller="c/late/r/-1")
    ledger.check(1)
    with pytest.raises(ClarityQuotaExceededError) as err:
        ledger.check(2)
    message = str(err.value)
    assert "2 call(s) needed, 1 left" in message
    assert "9 of 10 calls available to Airflow are used in the current utc_day window" in message
    assert "a/big_spender/r/-1 (6), b/small/r/-1 (3)" in message
    assert "available again at 2025-03-15 00:01:00 UTC" in message
    assert "python -m airflow_provider_clarity.quota usage demo-project" in message
