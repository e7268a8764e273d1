"""The OS breakdown written to S3 as Parquet, through the ``amazon`` extra.

Install with ``pip install 'airflow-provider-clarity[amazon]'``. The destination names the
AWS connection before the bucket (``s3://<aws_conn_id>@<bucket>/...``); Airflow's
ObjectStoragePath resolves credentials from that connection. Set the Variable
``clarity_s3_bucket`` to your bucket.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_clarity.operators.export import ClarityExportOperator

with DAG(
    dag_id="clarity_to_s3",
    schedule="35 0 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["clarity", "example"],
) as dag:
    ClarityExportOperator(
        task_id="by_os_to_s3",
        dimensions=["OS"],
        destination=(
            "s3://aws_default@{{ var.value.get('clarity_s3_bucket', 'my-clarity-bucket') }}"
            "/clarity/dt={{ clarity_day }}/by_os.parquet"
        ),
    )
