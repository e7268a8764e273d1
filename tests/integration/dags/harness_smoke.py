"""Harness smoke DAG: pool serialisation and deferral under the real scheduler.

One task defers on a ``DateTimeTrigger`` from inside ``execute`` (as ClarityExportOperator
does) while three sleepers share the 1-slot pool ``clarity_api`` with it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import DAG, BaseOperator, Context, task


class DeferOnce(BaseOperator):
    """Defers for ``seconds`` on a DateTimeTrigger, then succeeds."""

    def __init__(self, *, seconds: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seconds = seconds

    def execute(self, context: Context) -> None:
        moment = datetime.now(UTC) + timedelta(seconds=self.seconds)
        self.log.info("Deferring until %s", moment.isoformat())
        self.defer(trigger=DateTimeTrigger(moment=moment), method_name="execute_complete")

    def execute_complete(self, context: Context, event: Any = None) -> None:
        self.log.info("Resumed after the trigger fired")


with DAG(dag_id="harness_smoke", schedule=None, catchup=False, max_active_tasks=16):
    DeferOnce(task_id="defer", seconds=12, pool="clarity_api", priority_weight=100)

    for index in range(3):

        @task(task_id=f"sleep_{index}", pool="clarity_api")
        def sleep() -> None:
            time.sleep(3)

        sleep()
