"""A DAG's runs in the coming days, read from its timetable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_provider_clarity.version_compat import core_timetable

#: Days looked at from the next UTC midnight; the busiest one is the budget's test.
DAYS = 7
#: Runs read per DAG at most: an every-second schedule must not hang the planner or the page.
MAX_RUNS = 10_000


def timetable_summary(timetable: Any) -> tuple[str, bool | None]:
    """A schedule's label, and whether some of its runs cannot be counted: ``None`` when
    none can (asset-triggered or continuous), ``True`` for time *or* asset events."""
    name = type(timetable).__name__
    summary = str(getattr(timetable, "summary", "") or name)
    if name == "NullTimetable":
        return "None (only when triggered)", False
    if name == "OnceTimetable":
        return "@once (one run ever)", False
    if ("Asset" in name and "Time" not in name) or name == "ContinuousTimetable":
        return f"{summary} (asset-triggered or continuous: unknown)", None
    if "Asset" in name:
        return summary + " + asset events (unknown)", True
    return summary, False


def runs_between(dag: Any, start: datetime, days: int) -> tuple[list[datetime], bool, str]:
    """Run times of ``dag`` in ``[start, start + days)``, whether others are unknown, a label."""
    from airflow.timetables.base import TimeRestriction

    timetable = core_timetable(dag)
    summary, unknown = timetable_summary(timetable)
    if unknown is None:
        return [], True, summary
    if type(timetable).__name__ in ("NullTimetable", "OnceTimetable"):
        return [], False, summary
    import pendulum

    end = start + timedelta(days=days)
    restriction = TimeRestriction(
        earliest=pendulum.instance(start), latest=pendulum.instance(end), catchup=True
    )
    runs: list[datetime] = []
    last = None
    while len(runs) < MAX_RUNS:
        info = timetable.next_dagrun_info(
            last_automated_data_interval=last, restriction=restriction
        )
        if info is None or info.run_after >= end:
            break
        if info.run_after >= start:
            runs.append(info.run_after.astimezone(UTC))
        last = info.data_interval
    return runs, unknown, summary
