"""DAGs for the shared-snapshot scenario under a real scheduler (issue 12).

``shared_team_1`` .. ``shared_team_3`` each export the ``Device`` breakdown through
``clarity_shared`` (project-shared), writing under this cluster's ``AIRFLOW_HOME``: one host,
LocalExecutor, so the first export's ``file://`` raw snapshot is readable by the others.
"""

from __future__ import annotations

import os

from airflow.sdk import DAG

from airflow_provider_clarity.operators.export import ClarityExportOperator

SHARED_DAGS = ("shared_team_1", "shared_team_2", "shared_team_3")
OUTPUT = f"file://{os.environ.get('AIRFLOW_HOME', '/tmp')}/shared-output"

for dag_id in SHARED_DAGS:
    with DAG(dag_id=dag_id, schedule=None, catchup=False):
        ClarityExportOperator(
            task_id="device",
            clarity_conn_id="clarity_shared",
            dimensions=["Device"],
            destination=f"{OUTPUT}/{dag_id}/{{{{ run_id }}}}/device.parquet",
            retries=0,
        )
