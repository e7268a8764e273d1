"""DAG for the ledger race under a real scheduler (issue 20): twelve callers, one project.

``quota_race`` runs, against ``clarity_quota_race`` (one project, a small ``daily_limit``):

- ``export_0`` .. ``export_7``: ``ClarityExportOperator`` asking ``OS``, with
  ``on_quota_exhausted="skip"``, in their default pool ``clarity_api``;
- ``hook_0`` .. ``hook_3``: hand-written ``@task``s calling
  ``ClarityHook(...).get_live_insights(1, ["Device"])`` directly, as docs/derive.md shows;
  even ones in ``clarity_api``, odd ones in ``default_pool``. A call the ledger refuses
  skips the task, saying why.

The test raises the ``clarity_api`` pool to several slots. ``export_0``, ``export_1``,
``hook_0`` and ``hook_1`` have a higher priority, so the first tasks to run are both kinds
of caller, in both pools. Every task first sleeps until ``dag_run.conf["start_at"]`` (a Unix
time), so the tasks that got a slot all reach the ledger in the same instant: the race the
ledger lock must win.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_clarity.operators.export import ClarityExportOperator

CONN_ID = "clarity_quota_race"
EXPORTS = 8
HOOK_TASKS = 4
FIRST_WEIGHT = 10


def _barrier(context: Any) -> None:
    """Sleep until the run's ``start_at``, so that every task holding a slot starts together."""
    import time

    start_at = float((context["dag_run"].conf or {}).get("start_at", 0))
    time.sleep(max(0.0, start_at - time.time()))


@task(retries=0)
def hook_call(**context: Any) -> int:
    """One direct hook call, counted by the ledger by default; skipped when it refuses."""
    from airflow_provider_clarity.exceptions import ClarityQuotaExceededError
    from airflow_provider_clarity.hooks.clarity import ClarityHook
    from airflow_provider_clarity.version_compat import AirflowSkipException

    _barrier(context)
    try:
        rows = ClarityHook(CONN_ID).get_live_insights(1, ["Device"])
    except ClarityQuotaExceededError as err:
        raise AirflowSkipException(f"The quota ledger refused the call: {err}") from None
    return len(rows)


with DAG(dag_id="quota_race", schedule=None, catchup=False, max_active_tasks=16):
    for index in range(EXPORTS):
        ClarityExportOperator(
            task_id=f"export_{index}",
            clarity_conn_id=CONN_ID,
            dimensions=["OS"],
            on_quota_exhausted="skip",
            retries=0,
            priority_weight=FIRST_WEIGHT if index < 2 else 1,
            pre_execute=_barrier,
        )
    for index in range(HOOK_TASKS):
        hook_call.override(
            task_id=f"hook_{index}",
            pool="clarity_api" if index % 2 == 0 else "default_pool",
            priority_weight=FIRST_WEIGHT if index < 2 else 1,
        )()
