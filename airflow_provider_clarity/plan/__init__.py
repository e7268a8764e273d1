"""The day's budget, checked before it runs: Clarity calls per project, read from the DAGs.

``python -m airflow_provider_clarity.plan [DAGS_FOLDER]`` (or ``airflow clarity plan``)
loads the DAGs with a ``DagBag``, finds every ``ClarityExportOperator`` and
``ClarityDeriveOperator``, resolves each export's project offline (the connection's extras,
else the project its token names; no Clarity call, the token is never printed) and prints,
per project:

- each export's calls on the busiest UTC day of the coming week, from its DAG's schedule
  (cron, timedelta, ``@daily``...; ``None`` runs only when triggered: 0 scheduled;
  asset-triggered and continuous DAGs: unknown);
- the daily limit minus the reserve (the calls Airflow may spend);
- the runs shared snapshots absorb: the same request less than ``max_snapshot_age`` after
  a run whose raw answer other workers can read (``snapshots/index.py``);
- the breakdowns derivable from another task's answer (``derive.validate_roll_up``);
- a suggested plan with fewer calls: as few calls as cover every breakdown, the rest
  derived with ``ClarityDeriveOperator``; each call says which tasks it replaces (their
  calls a day) and why its answer fits under Clarity's 1000-row cap (requested, measured
  from the kept answers the shared-snapshot index lists, or assumed for a pair).

The exit status is 1 when a project's calls as written (after what sharing absorbs, which
needs no change to the DAGs) exceed its budget; the suggestion does not count. 2 when a
DAG file does not import. So a DAG repository's CI can run it.

Its modules, in the order a plan is made: ``tasks`` (which tasks are Clarity's),
``schedule`` (a DAG's runs), ``connections`` (an export's project, offline), ``collect``,
``count`` (the calls runs spend), ``rows`` (the rows kept answers had), ``suggest``,
``budget`` (each project's busiest day), ``render`` and ``cli`` (the command). The
api-server's quota page imports ``collect`` and ``count``, never the command.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_clarity.plan.budget import ProjectPlan, plan_dags, plan_projects
from airflow_provider_clarity.plan.collect import collect
from airflow_provider_clarity.plan.count import run_calls
from airflow_provider_clarity.plan.render import render
from airflow_provider_clarity.plan.schedule import MAX_RUNS, timetable_summary
from airflow_provider_clarity.plan.tasks import TaskKind, TaskPlan, task_kind

__all__ = [
    "MAX_RUNS",
    "ProjectPlan",
    "TaskKind",
    "TaskPlan",
    "check",
    "collect",
    "main",
    "plan_dags",
    "plan_projects",
    "render",
    "run_calls",
    "task_kind",
    "timetable_summary",
]


def __getattr__(name: str) -> Any:
    # The command's names load on first use, so the page's imports never load the command.
    if name in ("check", "main"):
        from airflow_provider_clarity.plan import cli

        return getattr(cli, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
