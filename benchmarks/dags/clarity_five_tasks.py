"""Parse benchmark: a daily Clarity DAG with five provider tasks (four exports, one sensor).

Parsed by ``benchmarks/run.py`` and ``tests/test_parse_cost.py``; its twin with the http
provider's ``HttpOperator`` is ``http_five_tasks.py``. Keep the two alike.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_clarity.operators.export import ClarityExportOperator
from airflow_provider_clarity.sensors.quota import ClarityQuotaSensor

BREAKDOWNS: dict[str, tuple[str, ...]] = {
    "snapshot": (),
    "os": ("OS",),
    "device_browser": ("Device", "Browser"),
    "url": ("URL",),
}

with DAG(
    dag_id="clarity_five_tasks",
    schedule="0 6 * * *",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=10)},
    tags=["clarity", "benchmark"],
) as dag:
    wait_for_quota = ClarityQuotaSensor(
        task_id="wait_for_quota",
        clarity_conn_id="clarity_default",
        calls=len(BREAKDOWNS),
    )
    for name, dimensions in BREAKDOWNS.items():
        export = ClarityExportOperator(
            task_id=f"export_{name}",
            clarity_conn_id="clarity_default",
            num_of_days=1,
            dimensions=dimensions,
            destination=f"file:///data/clarity/dt={{{{ ds }}}}/{name}.parquet",
        )
        wait_for_quota >> export
