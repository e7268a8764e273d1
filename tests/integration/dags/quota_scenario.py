"""DAGs for the quota scenario under a real scheduler (issue 4).

- ``quota_team_1`` .. ``quota_team_3``: five exports each against ``clarity_default``
  (project-a): 15 wanted calls for a limit of 10 per window. They wait for the reset by
  deferring to the triggerer.
- ``quota_other_project``: one export against ``clarity_other`` (project-b).
- ``quota_reschedule``: three exports against ``clarity_resched`` (project-c, limit 2) that
  wait by ``AirflowRescheduleException`` instead (``deferrable=False``).

Every task returns its rows to XCom (no destination) and runs in the default pool
``clarity_api``; the test creates the connections and the pool.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_clarity.operators.export import ClarityExportOperator

TEAM_DAGS = ("quota_team_1", "quota_team_2", "quota_team_3")
TASKS_PER_DAG = 5


def _exports(conn_id: str, count: int, *, deferrable: bool) -> None:
    for index in range(count):
        ClarityExportOperator(
            task_id=f"export_{index}",
            clarity_conn_id=conn_id,
            num_of_days=1,
            dimensions=["OS"],
            on_quota_exhausted="wait",
            deferrable=deferrable,
            retries=0,
        )


for dag_id in TEAM_DAGS:
    with DAG(dag_id=dag_id, schedule=None, catchup=False, max_active_tasks=16):
        _exports("clarity_default", TASKS_PER_DAG, deferrable=True)

with DAG(dag_id="quota_other_project", schedule=None, catchup=False):
    _exports("clarity_other", 1, deferrable=True)

with DAG(dag_id="quota_reschedule", schedule=None, catchup=False, max_active_tasks=16):
    _exports("clarity_resched", 3, deferrable=False)
