"""DAG of the parallel-projects benchmark: one export for each of N Clarity projects.

``parallel_projects`` has ``export_0`` .. ``export_{N-1}``, each against its own connection
``clarity_p{i}`` (one project each), in the default pool ``clarity_api``; N is
``CLARITY_BENCH_PROJECTS`` (the benchmark sets it for every component). The benchmark runs it
once with the pool at 1 slot and once with many slots and the ledger lock
(``benchmarks/parallel_projects.py``).
"""

from __future__ import annotations

import os

from airflow.sdk import DAG

from airflow_provider_clarity.operators.export import ClarityExportOperator

PROJECTS = int(os.environ.get("CLARITY_BENCH_PROJECTS", "50"))

with DAG(
    dag_id="parallel_projects", schedule=None, catchup=False, max_active_tasks=max(PROJECTS, 1)
):
    for index in range(PROJECTS):
        ClarityExportOperator(
            task_id=f"export_{index}",
            clarity_conn_id=f"clarity_p{index}",
            dimensions=["OS"],
            on_quota_exhausted="fail",
            retries=0,
        )
