"""Parse benchmark baseline: ``clarity_five_tasks.py`` written with the http provider.

Five ``HttpOperator`` tasks call the same Clarity endpoint with the same requests; the
token comes from the connection through a template. Keep the two files alike.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.http.operators.http import HttpOperator
from airflow.sdk import DAG

ENDPOINT = "/export-data/api/v1/project-live-insights"
BREAKDOWNS: dict[str, tuple[str, ...]] = {
    "snapshot": (),
    "os": ("OS",),
    "device_browser": ("Device", "Browser"),
    "url": ("URL",),
}

with DAG(
    dag_id="http_five_tasks",
    schedule="0 6 * * *",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=10)},
    tags=["clarity", "benchmark"],
) as dag:
    check_api = HttpOperator(
        task_id="check_api",
        http_conn_id="clarity_http",
        method="GET",
        endpoint=ENDPOINT,
        data={"numOfDays": "1"},
        headers={"Authorization": "Bearer {{ conn.clarity_http.password }}"},
        response_check=lambda response: response.status_code == 200,
    )
    for name, dimensions in BREAKDOWNS.items():
        params = {"numOfDays": "1"}
        params.update({f"dimension{i}": d for i, d in enumerate(dimensions, start=1)})
        export = HttpOperator(
            task_id=f"export_{name}",
            http_conn_id="clarity_http",
            method="GET",
            endpoint=ENDPOINT,
            data=params,
            headers={"Authorization": "Bearer {{ conn.clarity_http.password }}"},
            log_response=False,
        )
        check_api >> export
