"""Where a ledger lives: its Variable key, and a round trip through Airflow Variables."""

from __future__ import annotations

from pathlib import Path

from airflow_provider_clarity.quota import (
    QuotaLedger,
    ledger_key,
)


def test_ledger_keys_are_documented_and_safe():
    assert ledger_key("demo-project") == "clarity_quota__demo-project"
    assert QuotaLedger("demo-project").key == "clarity_quota__demo-project"
    odd = ledger_key("team a/prod")
    assert odd.startswith("clarity_quota__team_a_prod_")
    assert odd != ledger_key("team_a_prod")
    assert odd != ledger_key("team a_prod")


# ------------------------------------------------------------------ real Airflow Variables

_DAG_FILE = """
from datetime import datetime

from airflow.sdk import DAG, Variable, task

from airflow_provider_clarity import quota


with DAG("clarity_quota_roundtrip", schedule=None, start_date=datetime(2025, 1, 1)):

    @task
    def record():
        assert quota.in_task(), "expected the Task SDK's Variable path"
        ledger = quota.QuotaLedger("dag-test-project", daily_limit=5)
        ledger.before_call(None)
        stored = Variable.get("clarity_quota__dag-test-project", deserialize_json=True)
        assert [c["outcome"] for c in stored["calls"]] == ["pending"], stored
        ledger.after_call(None, "200")
        assert quota.QuotaLedger("dag-test-project", daily_limit=5).remaining() == 4

    record()
"""


def test_the_ledger_round_trips_through_airflow_variables_in_a_task(airflow_db: Path):
    from airflow.models.variable import Variable

    from airflow_provider_clarity.version_compat import DagBag
    from tests.conftest import DAGS_FOLDER

    # dag.test() only runs DAGs that the dags-folder bundle can find.
    dag_file = DAGS_FOLDER / "clarity_quota_roundtrip.py"
    dag_file.write_text(_DAG_FILE)
    try:
        bag = DagBag(dag_folder=str(dag_file))
        assert not bag.import_errors, bag.import_errors
        dag_run = bag.get_dag("clarity_quota_roundtrip").test()
    finally:
        dag_file.unlink()
    assert dag_run.state == "success"

    stored = Variable.get("clarity_quota__dag-test-project", deserialize_json=True)
    assert len(stored["calls"]) == 1
    call = stored["calls"][0]
    assert call["outcome"] == "200"
    assert call["caller"] == f"clarity_quota_roundtrip/record/{dag_run.run_id}/-1"
    assert stored["settings"]["daily_limit"] == 5
    # Outside a task the same ledger reads the metadata DB.
    assert QuotaLedger("dag-test-project", daily_limit=5).remaining() == 4
