"""DAG for the wait-race stress scenario (issue 13): six exports, two calls per window.

``wait_race`` runs six exports against ``clarity_race`` (project-w, 2 calls per 20 s
rolling window). Even tasks wait by deferring, odd ones by rescheduling, so both ways of
waiting meet the Airflow 3.3.2 scheduler race when the operator asks for a short wait.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_clarity.operators.export import ClarityExportOperator

with DAG(dag_id="wait_race", schedule=None, catchup=False, max_active_tasks=16):
    for index in range(6):
        ClarityExportOperator(
            task_id=f"export_{index}",
            clarity_conn_id="clarity_race",
            dimensions=["OS"],
            on_quota_exhausted="wait",
            deferrable=index % 2 == 0,
            retries=0,
        )
