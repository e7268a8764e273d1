"""Which day a partition names: the one rule, and the ``clarity_day`` template value.

The rule
    A run's partition names the UTC day that holds most of the last 24 hours before the
    run's ``run_after``: ``date(run_after - 12 h)``. A run scheduled at 00:05 UTC names the
    day before (the day its snapshot covers); a run triggered by hand, by the REST API, the
    CLI or an asset event after 12:00 UTC names that same day, before 12:00 the day before.

Why ``run_after``: every run type has one (a manual run without a logical date too, where
``ds`` is undefined), and it is fixed when the run is created, so every retry and every
re-run of the run writes to the same partition. The call time is *not* used: it changes
with each try. When the call is late, the file's ``window_start``/``window_end`` columns
say what it really covers and the operator's coverage report says by how much.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

#: The template variable the export operator adds: ``{{ clarity_day }}``.
CONTEXT_KEY = "clarity_day"
_LEAD = timedelta(hours=12)


def day_for(run_after: datetime) -> date:
    """The day a run with this ``run_after`` names (the module's rule).

    :raises ValueError: ``run_after`` is naive.
    """
    if run_after.tzinfo is None or run_after.utcoffset() is None:
        raise ValueError(f"run_after {run_after!r} has no timezone.")
    return (run_after.astimezone(UTC) - _LEAD).date()


def clarity_day(context: Any) -> str:
    """``YYYY-MM-DD`` for the run in an Airflow task ``context`` (see the module's rule).

    Also usable as a user-defined macro in other operators:
    ``user_defined_macros={"clarity_day": clarity_day}`` then ``{{ clarity_day(dag_run) }}``
    accepts a DagRun as well as a context.

    :raises ValueError: the context has no DagRun with a ``run_after``.
    """
    run = context.get("dag_run") if isinstance(context, Mapping) else context
    run_after = getattr(run, "run_after", None)
    if run_after is None:
        raise ValueError("clarity_day needs a DagRun with run_after (Airflow 3).")
    return day_for(run_after).isoformat()


def add_to_context(context: Any) -> None:
    """Put ``clarity_day`` into a task ``context`` before its templates render; a context
    without a DagRun (a bare render) is left alone, so the template says it is undefined."""
    try:
        context[CONTEXT_KEY] = clarity_day(context)
    except ValueError:
        return
