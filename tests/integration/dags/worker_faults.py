"""DAGs for the Celery worker scenarios (issue 13): a retry on another worker, a lost worker.

- ``retry_elsewhere``: one export to ``dag_run.conf["destination"]`` (JSON), 1 retry. The
  test makes the first try's destination write fail (a folder appears where the file goes
  while the call is in flight), so
  the raw snapshot is kept beside it but the task fails; the retry runs on the other worker.
- ``worker_killed``: ``export`` (1 retry) is in flight to a slow Clarity when the test kills
  its worker; ``after`` (``on_quota_exhausted="skip"``) then needs a call of a 2-call quota.

Retry delays are long on purpose: a task queued again within seconds of its last exit can
be failed by the Airflow 3.3.2 scheduler race (see the wait-race test).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG

from airflow_provider_clarity.operators.export import ClarityExportOperator

with DAG(dag_id="retry_elsewhere", schedule=None, catchup=False):
    ClarityExportOperator(
        task_id="export",
        clarity_conn_id="clarity_retry",
        dimensions=["OS"],
        destination="{{ dag_run.conf['destination'] }}",
        output_format="json",
        retries=1,
        retry_delay=timedelta(seconds=20),
    )

with DAG(dag_id="worker_killed", schedule=None, catchup=False):
    export = ClarityExportOperator(
        task_id="export",
        clarity_conn_id="clarity_killed",
        dimensions=["OS"],
        retries=1,
        retry_delay=timedelta(seconds=15),
    )
    after = ClarityExportOperator(
        task_id="after",
        clarity_conn_id="clarity_killed",
        dimensions=["Browser"],
        on_quota_exhausted="skip",
        retries=0,
    )
    export >> after
