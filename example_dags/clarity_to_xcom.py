"""A Clarity breakdown in XCom mode, feeding a task that computes the rage-click rate per device.

XCom mode suits small breakdowns (a few hundred rows): no storage to set up. For the
full snapshot or a URL breakdown, give the operator a ``destination`` instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_clarity.operators.export import ClarityExportOperator

with DAG(
    dag_id="clarity_to_xcom",
    schedule="20 0 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["clarity", "example"],
) as dag:
    by_device = ClarityExportOperator(task_id="by_device", dimensions=["Device"])

    @task
    def rage_click_rate(records: list[dict[str, Any]]) -> dict[str, float]:
        """Share of sessions with a rage click, per device, in percent."""
        rates = {
            row["device"]: float(row["sessions_with_metric_percentage"])
            for row in records
            if row["metric"] == "RageClickCount"
            and row.get("device") is not None
            and row.get("sessions_with_metric_percentage") is not None
        }
        for device, rate in sorted(rates.items(), key=lambda kv: -kv[1]):
            print(f"{device:>8}: {rate:6.2f}% of sessions had a rage click")
        return rates

    rage_click_rate(by_device.output)
