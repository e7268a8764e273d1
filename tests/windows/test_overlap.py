"""The partition rule, the window arithmetic, and the ledger read that coverage uses."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from airflow_provider_clarity.quota import MemoryLedgerStore, QuotaLedger
from airflow_provider_clarity.request import ClarityRequest
from airflow_provider_clarity.windows import overlap
from airflow_provider_clarity.windows.clock import now, use_clock
from airflow_provider_clarity.windows.partition import clarity_day, day_for

T = datetime(2026, 12, 2, 0, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("run_after", "day"),
    [
        (datetime(2026, 12, 2, 0, 5, tzinfo=UTC), date(2026, 12, 1)),  # scheduled 00:05
        (datetime(2026, 12, 2, 11, 59, tzinfo=UTC), date(2026, 12, 1)),  # manual, morning
        (datetime(2026, 12, 2, 12, 0, tzinfo=UTC), date(2026, 12, 2)),
        (datetime(2026, 12, 2, 15, 20, tzinfo=UTC), date(2026, 12, 2)),  # manual, afternoon
        # An aware local time counts in UTC: 01:00+02:00 is 23:00 UTC the day before.
        (datetime(2026, 12, 2, 1, 0, tzinfo=timezone(timedelta(hours=2))), date(2026, 12, 1)),
    ],
)
def test_day_for_is_the_utc_day_of_run_after_minus_12_hours(run_after: datetime, day: date) -> None:
    assert day_for(run_after) == day


def test_clarity_day_reads_the_dag_run_of_a_context_or_a_dag_run() -> None:
    run = SimpleNamespace(run_after=T, logical_date=None)  # a manual run without logical date
    assert clarity_day({"dag_run": run}) == "2026-12-01"
    assert clarity_day(run) == "2026-12-01"
    with pytest.raises(ValueError, match="run_after"):
        clarity_day({})
    with pytest.raises(ValueError, match="timezone"):
        day_for(datetime(2026, 12, 2))


def test_back_to_back_windows_have_no_overlap_and_no_gap() -> None:
    covered = overlap.compare(T, 1, T - timedelta(days=1))
    assert (covered.window_start, covered.window_end) == (T - timedelta(days=1), T)
    assert (covered.overlap_minutes, covered.gap_minutes) == (0, 0)
    assert covered.problem(15) is None


def test_a_late_previous_window_overlaps_and_an_early_one_leaves_a_gap() -> None:
    late = overlap.compare(T, 1, T - timedelta(days=1) + timedelta(minutes=40))
    assert (late.overlap_minutes, late.gap_minutes) == (40, 0)
    assert "overlaps the previous one by 40 min" in (late.problem(15) or "")
    assert late.problem(40) is None
    early = overlap.compare(T, 1, T - timedelta(days=1, minutes=20))
    assert (early.overlap_minutes, early.gap_minutes) == (0, 20)
    assert "20 min gap" in (early.problem(15) or "")
    # A 2-day window after a 1-day one overlaps it by a whole day.
    assert overlap.compare(T, 2, T - timedelta(days=1)).overlap_minutes == 1440


def test_no_previous_snapshot_reports_no_minutes() -> None:
    covered = overlap.compare(T, 1, None)
    assert (covered.overlap_minutes, covered.gap_minutes) == (None, None)
    assert covered.as_extra()["previous_window_end"] is None
    assert "no earlier snapshot" in covered.describe()


def test_last_success_is_the_latest_200_of_the_same_request_before_the_moment() -> None:
    moment = [T - timedelta(days=1)]
    ledger = QuotaLedger("p", store=MemoryLedgerStore(), clock=lambda: moment[0])
    os_request, device = ClarityRequest.build(1, "OS"), ClarityRequest.build(1, "Device")
    for at, request, outcome in [
        (T - timedelta(days=1), os_request, "200"),
        (T - timedelta(hours=20), device, "200"),  # another request
        (T - timedelta(hours=10), os_request, "500"),  # not a snapshot
        (T, os_request, "200"),  # this call itself
    ]:
        moment[0] = at
        ledger.before_call(request)
        ledger.after_call(request, outcome)
    found = ledger.last_success(os_request.describe(), before=T)
    assert found is not None and found.at == T - timedelta(days=1)
    assert ledger.last_success(ClarityRequest.build(2, "OS").describe(), before=T) is None
    covered = overlap.from_ledger(ledger, os_request.describe(), T, 1)
    assert (covered.overlap_minutes, covered.gap_minutes) == (0, 0)


def test_use_clock_moves_now_and_restores_it() -> None:
    with use_clock(lambda: datetime(2030, 1, 1)):  # naive reads as UTC
        assert now() == datetime(2030, 1, 1, tzinfo=UTC)
    assert abs(now() - datetime.now(UTC)) < timedelta(minutes=1)


def test_the_operator_renders_clarity_day_for_a_run_without_a_logical_date() -> None:
    from airflow_provider_clarity.operators.export import ClarityExportOperator

    op = ClarityExportOperator(
        task_id="export", destination="file:///data/clarity/dt={{ clarity_day }}/os.parquet"
    )
    run = SimpleNamespace(run_after=datetime(2026, 12, 2, 15, 20, tzinfo=UTC), logical_date=None)
    op.render_template_fields({"dag_run": run})  # type: ignore[arg-type]
    assert op.destination == "file:///data/clarity/dt=2026-12-02/os.parquet"
