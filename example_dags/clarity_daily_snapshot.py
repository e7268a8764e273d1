"""Daily Clarity snapshot: the full dashboard plus four breakdowns, as Parquet partitioned by date.

Clarity keeps no history and serves only the trailing 24/48/72 hours before each call, so
the only way to build daily history is to take one snapshot a day and keep it. This DAG
does that shortly after 00:00 UTC, when Clarity's daily quota is believed to reset.

Quota: Clarity allows 10 calls per project per day. This DAG spends 5 (one per export
task) and leaves 5 for retries, other DAGs and people using the API by hand. Every task
runs in the ``clarity_api`` pool (one slot), and the provider's ledger makes a task wait
for the next reset rather than spend a call that would be refused.

Set the Airflow Variable ``clarity_export_base`` to where the files should go, for example
``s3://aws_default@my-bucket/clarity`` or ``file:///data/clarity``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from airflow.sdk import DAG

from airflow_provider_clarity.operators.export import ClarityExportOperator

# clarity_day: the day the snapshot covers, for every run type (the partition rule, in
# airflow_provider_clarity/partition.py and docs/windows.md).
BASE = (
    "{{ var.value.get('clarity_export_base', 'file:///tmp/clarity-export') }}/dt={{ clarity_day }}"
)

# task id -> the dimensions of that breakdown. One entry is one API call per day.
BREAKDOWNS: dict[str, list[str]] = {
    "snapshot": [],
    "by_os": ["OS"],
    "by_device": ["Device"],
    "by_country_device": ["Country", "Device"],
    "by_url": ["URL"],
}

log = logging.getLogger("clarity.history")


def alert_missed_day(context: Any) -> None:
    """Airflow 3's on_skipped_callback: a skipped export is a day missing from the history.

    Clarity keeps no history, so the day cannot be fetched later. Replace the log line with
    a notifier (``SmtpNotifier``, ``SlackNotifier``...) to be told where you look.
    """
    ti = context["ti"]
    log.error(
        "Clarity history: %s.%s was skipped for run %s; that day is missing for good.",
        ti.dag_id,
        ti.task_id,
        ti.run_id,
    )


with DAG(
    dag_id="clarity_daily_snapshot",
    schedule="5 0 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,  # Clarity has no history: a missed day cannot be fetched later.
    max_active_runs=1,
    tags=["clarity", "example"],
    default_args={"retries": 2, "on_skipped_callback": alert_missed_day},
) as dag:
    for task_id, dimensions in BREAKDOWNS.items():
        ClarityExportOperator(
            task_id=task_id,
            num_of_days=1,
            dimensions=dimensions,
            destination=f"{BASE}/{task_id}.parquet",
            output_format="parquet",
        )
