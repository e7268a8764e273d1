"""Calls still scheduled today, read from the metadata DB as the api-server reads it.

DAG files are synced into the suite's metadata DB the way the DAG processor does it
(serialized DAG, ``DagModel.next_dagrun_create_after``); runs and task instances are
real rows. The connections point at the emulator, which must receive no request.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_clarity.plugins import quota_page
from airflow_provider_clarity.plugins.page_data import report
from airflow_provider_clarity.plugins.quota_page.tables import MAX_SCHEDULED_ROWS
from airflow_provider_clarity.plugins.quota_schedule import read_schedule
from airflow_provider_clarity.quota import MemoryLedgerStore, QuotaLedger, ledger_key
from airflow_provider_clarity.testing import ClarityEmulator

PROJECT = "schedule-project"
HEADER = """
from datetime import datetime

from airflow.sdk import DAG, Asset

from airflow_provider_clarity.operators.export import ClarityExportOperator


class MyExport(ClarityExportOperator):
    '''A team's own subclass: still an export.'''


START = datetime(2025, 1, 1)
"""


@pytest.fixture
def token(clarity_emulator: ClarityEmulator, monkeypatch: pytest.MonkeyPatch) -> str:
    issued = clarity_emulator.issue_token(PROJECT)
    monkeypatch.setenv(
        "AIRFLOW_CONN_CLARITY_SCHED",
        clarity_emulator.airflow_conn_json(issued, project_id=PROJECT, reserve=2),
    )
    return issued


def _file(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + textwrap.dedent(body))
    return path


def _read(
    now: datetime, variables: dict[str, str] | None = None, readable: set[str] | None = None
) -> dict[str, Any]:
    from airflow.utils.session import create_session

    with create_session() as session:
        schedule = read_schedule(now, session=session, readable=readable)
    return report((variables or {}).items(), now, ui_base="/ui", schedule=schedule)


def _project(data: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in data["projects"] if p["project_id"] == PROJECT)


def _hourly(first: datetime, until: datetime) -> list[datetime]:
    """Every hour from ``first`` while before ``until``: what a ``17 * * * *`` DAG runs."""
    return [first + timedelta(hours=k) for k in range(48) if first + timedelta(hours=k) < until]


def test_unpaused_schedules_count_each_run_left_before_the_reset(
    token: str, clarity_emulator: ClarityEmulator, scheduled_dags: Any, tmp_path: Path
) -> None:
    dag_file = _file(
        tmp_path,
        "sched_many",
        """
        with DAG("sched_hourly", schedule="17 * * * *", start_date=START, catchup=False):
            ClarityExportOperator(task_id="by_os", clarity_conn_id="clarity_sched", dimensions="OS")
            MyExport(task_id="by_country", clarity_conn_id="clarity_sched", dimensions=["Country"])
            ClarityExportOperator.partial(task_id="mapped", clarity_conn_id="clarity_sched").expand(
                dimensions=[["OS"], ["Browser"]]
            )
        with DAG("sched_paused", schedule="17 * * * *", start_date=START, catchup=False):
            ClarityExportOperator(task_id="by_device", clarity_conn_id="clarity_sched")
        with DAG("sched_manual", schedule=None, start_date=START):
            ClarityExportOperator(task_id="by_url", clarity_conn_id="clarity_sched")
        with DAG("sched_assets", schedule=[Asset("s3://b/ready")], start_date=START):
            ClarityExportOperator(task_id="on_asset", clarity_conn_id="clarity_sched")
        with DAG("sched_lost", schedule="17 * * * *", start_date=START, catchup=False):
            ClarityExportOperator(task_id="no_conn", clarity_conn_id="clarity_missing")
        """,
    )
    models = scheduled_dags(dag_file, "sched_hourly", "sched_manual", "sched_assets", "sched_lost")
    scheduled_dags(dag_file, "sched_paused", paused=True)
    first = models["sched_hourly"].next_dagrun_create_after
    now = first - timedelta(minutes=1)

    data = _read(now)

    project = _project(data)  # no ledger yet: the card comes from the connection's settings
    assert project["variable_key"] == ledger_key(PROJECT)
    assert (project["used"], project["remaining"], project["capacity"]) == (0, 8, 8)
    scheduled = project["scheduled_today"]
    until = datetime.fromisoformat(scheduled["until"])
    assert until == datetime.fromisoformat(project["window_end"])
    expected = _hourly(first, until)
    assert expected, "a 17 * * * * DAG runs at least once before the next reset"
    for task_id in ("by_os", "by_country"):
        runs = [r for r in scheduled["runs"] if r["task_id"] == task_id]
        assert [datetime.fromisoformat(r["at"]) for r in runs] == expected
        assert {(r["dag_id"], r["calls"], r["overdue"]) for r in runs} == {
            ("sched_hourly", 1, False)
        }
    assert {r["dag_id"] for r in scheduled["runs"]} == {"sched_hourly"}  # paused, manual: none
    assert scheduled["calls"] == 2 * len(expected)
    assert scheduled["over_by"] == max(0, 2 * len(expected) - 8)
    assert scheduled["pending"] == []
    assert {(u["dag_id"], u["task_id"]) for u in scheduled["unknown"]} == {
        ("sched_hourly", "mapped"),
        ("sched_assets", "on_asset"),
    }
    lost = [(u["dag_id"], u["task_id"]) for u in data["unresolved_exports"]]
    assert lost == [("sched_lost", "no_conn")]
    assert not any(p["project_id"] == "clarity_missing" for p in data["projects"])

    html = quota_page.render(data)
    assert html.count('<g class="scheduled"') == len(scheduled["runs"])
    assert f'<b class="scheduled">{scheduled["calls"]}</b>' in html
    assert "sched_lost / no_conn" in html
    assert token not in json.dumps(data) and token not in html
    assert scheduled["hidden_calls"] == 0

    # A user who may read one of these DAGs sees how many calls the others will make, not
    # from where.
    hidden = _read(now, readable={"sched_assets"})
    blind = _project(hidden)["scheduled_today"]
    assert (blind["calls"], blind["hidden_calls"]) == (scheduled["calls"], scheduled["calls"])
    assert blind["runs"] == [] and hidden["unresolved_exports"] == []
    assert [(u["dag_id"], u["task_id"]) for u in blind["unknown"]] == [("sched_assets", "on_asset")]
    blind_html = quota_page.render(hidden)
    assert "sched_hourly" not in blind_html and "sched_lost" not in blind_html
    assert "DAGs you may not read" in blind_html
    # One who may read none of them does not see the project at all, only that one is hidden.
    none = _read(now, readable={"some_other_dag"})
    assert PROJECT not in [p["project_id"] for p in none["projects"]]
    assert none["hidden_projects"] == 1
    none_html = quota_page.render(none)
    assert PROJECT not in none_html and "sched_hourly" not in none_html
    assert clarity_emulator.total_requests() == 0


def test_a_later_now_drops_the_runs_already_past_and_overdue_runs_start_now(
    token: str, scheduled_dags: Any, tmp_path: Path
) -> None:
    dag_file = _file(
        tmp_path,
        "sched_later",
        """
        with DAG("sched_later", schedule="17 * * * *", start_date=START, catchup=False):
            ClarityExportOperator(task_id="by_os", clarity_conn_id="clarity_sched", dimensions="OS")
        """,
    )
    first = scheduled_dags(dag_file, "sched_later")["sched_later"].next_dagrun_create_after
    # The scheduler has not created the run due at `first` yet (it is down, or busy).
    now = first + timedelta(minutes=30)

    scheduled = _project(_read(now))["scheduled_today"]

    runs = [datetime.fromisoformat(r["at"]) for r in scheduled["runs"]]
    until = datetime.fromisoformat(scheduled["until"])
    assert runs == [now, *_hourly(first + timedelta(hours=1), until)]
    assert [r["overdue"] for r in scheduled["runs"]] == [True] + [False] * (len(runs) - 1)


def test_one_shared_snapshot_serves_the_same_request_of_another_dag(
    clarity_emulator: ClarityEmulator,
    scheduled_dags: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issued = clarity_emulator.issue_token(PROJECT)
    conn = clarity_emulator.airflow_conn_json(
        issued, project_id=PROJECT, max_snapshot_age_seconds=600
    )
    monkeypatch.setenv("AIRFLOW_CONN_CLARITY_SCHED", conn)
    dag_file = _file(
        tmp_path,
        "sched_shared",
        f"""
        for team in ("a", "b"):
            with DAG(f"sched_team_{{team}}", schedule="17 * * * *", start_date=START,
                     catchup=False):
                ClarityExportOperator(
                    task_id="by_device",
                    clarity_conn_id="clarity_sched",
                    dimensions=["Device"],
                    destination=f"file://{tmp_path}/{{team}}/device.parquet",
                )
        """,
    )
    models = scheduled_dags(dag_file, "sched_team_a", "sched_team_b")
    now = models["sched_team_a"].next_dagrun_create_after - timedelta(minutes=1)

    scheduled = _project(_read(now))["scheduled_today"]

    by_team = {
        dag_id: [r for r in scheduled["runs"] if r["dag_id"] == dag_id]
        for dag_id in ("sched_team_a", "sched_team_b")
    }
    assert len(by_team["sched_team_a"]) == len(by_team["sched_team_b"]) > 0
    # At equal times the order in the pool is unknown: one of the two calls, once an hour.
    pairs = list(zip(by_team["sched_team_a"], by_team["sched_team_b"], strict=True))
    assert all(a["calls"] + b["calls"] == 1 for a, b in pairs)
    assert scheduled["calls"] == len(pairs)
    shared = [r for r in scheduled["runs"] if r["calls"] == 0]
    assert all(r["shared_from"] in ("sched_team_a.by_device", "sched_team_b.by_device")
               for r in shared)  # fmt: skip


def test_runs_already_created_count_their_export_tasks_that_have_not_called(
    token: str, scheduled_dags: Any, tmp_path: Path
) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    dag_file = _file(
        tmp_path,
        "sched_running",
        """
        with DAG("sched_running", schedule=None, start_date=START):
            for name in ("queued", "called", "calling", "retry", "waiting", "done"):
                ClarityExportOperator(task_id=name, clarity_conn_id="clarity_sched")
        """,
    )
    scheduled_dags(dag_file, "sched_running")
    now = datetime.now(UTC).replace(microsecond=0)
    run_id = f"manual__{now.isoformat()}"
    started = now - timedelta(minutes=5)
    with create_session() as session:
        dag = SerializedDagModel.get_dag("sched_running", session=session)
        assert dag is not None
        dag.create_dagrun(
            run_id=run_id,
            run_after=now,
            run_type=DagRunType.MANUAL,
            triggered_by=DagRunTriggeredByType.TEST,
            state=DagRunState.RUNNING,
            session=session,
        )
        session.flush()
        states = {"queued": "queued", "called": "running", "calling": "running",
                  "retry": "up_for_retry", "waiting": "deferred", "done": "success"}  # fmt: skip
        for ti in session.query(TaskInstance).filter_by(dag_id="sched_running", run_id=run_id):
            ti.state, ti.start_date = states[ti.task_id], started
    # The ledger: "called" and "retry" called in this try; "calling" called in an earlier one.
    store = MemoryLedgerStore()
    for task_id, at in (("called", now - timedelta(minutes=1)),
                        ("retry", now - timedelta(minutes=2)),
                        ("calling", started - timedelta(hours=1))):  # fmt: skip
        ledger = QuotaLedger(
            PROJECT, reserve=2, store=store, clock=lambda at=at: at,
            caller=f"sched_running/{task_id}/{run_id}/-1",
        )  # fmt: skip
        ledger.before_call(None)
        ledger.after_call(None, "503" if task_id == "retry" else "200")
    try:
        data = _read(now, {ledger_key(PROJECT): json.dumps(store.data)})

        scheduled = _project(data)["scheduled_today"]
        pending = {(p["task_id"], p["state"]) for p in scheduled["pending"]}
        assert pending == {
            ("queued", "queued"),
            ("calling", "running"),  # running, no call in this try yet
            ("retry", "up_for_retry"),  # its next try calls again
            ("waiting", "deferred"),  # waiting for the quota
        }
        assert scheduled["runs"] == [] and scheduled["calls"] == 4
        # 8 - 3 calls, less those of the previous UTC day when the test runs just after midnight.
        expected = QuotaLedger(PROJECT, reserve=2, store=store, clock=lambda: now).remaining()
        assert _project(data)["remaining"] == expected >= 5
        link = next(p["url"] for p in scheduled["pending"] if p["task_id"] == "queued")
        assert link.startswith("/ui/dags/sched_running/runs/manual__") and link.endswith(
            "/tasks/queued"
        )
    finally:
        with create_session() as session:
            session.query(TaskInstance).filter_by(dag_id="sched_running").delete()
            session.query(DagRun).filter_by(dag_id="sched_running").delete()


def test_a_schedule_that_cannot_be_read_leaves_the_ledgers_on_the_page() -> None:
    store = MemoryLedgerStore()
    ledger = QuotaLedger(PROJECT, store=store)
    ledger.before_call(None)
    ledger.after_call(None, "200")

    data = report(
        [(ledger_key(PROJECT), json.dumps(store.data))],
        datetime.now(UTC),
        schedule=None,
        schedule_error="OperationalError (see the api-server log)",
    )

    assert _project(data)["scheduled_today"] is None and _project(data)["used"] == 1
    html = quota_page.render(data)
    assert "The DAG schedules could not be read: OperationalError" in html
    assert '<g class="scheduled"' not in html and "Still scheduled" not in html


def test_a_rolling_window_counts_the_runs_of_one_window_from_now() -> None:
    from airflow_provider_clarity.connection.settings import QuotaSettings
    from airflow_provider_clarity.plan import TaskPlan
    from airflow_provider_clarity.plugins.quota_schedule import HORIZON, Schedule
    from airflow_provider_clarity.request import ClarityRequest

    now = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    runs = [now + timedelta(hours=h) for h in range(0, 100, 6)]  # every 6 h for 4 days
    settings = QuotaSettings(PROJECT, window="rolling", rolling_window_seconds=12 * 3600)
    task = TaskPlan("six_hourly", "by_os", "export", "0 */6 * * *", runs, project_id=PROJECT,
                    settings=settings, request=ClarityRequest.build(1, ["OS"]))  # fmt: skip
    document = {"project_id": PROJECT, "settings": settings.to_json(), "calls": []}

    got = _project(report([(ledger_key(PROJECT), json.dumps(document))], now,
                          schedule=Schedule(now, [task])))  # fmt: skip

    scheduled = got["scheduled_today"]
    assert datetime.fromisoformat(scheduled["until"]) == now + timedelta(hours=12)
    assert [r["at"] for r in scheduled["runs"]] == [
        now.isoformat(),
        (now + timedelta(hours=6)).isoformat(),
    ]
    # A window longer than the runs read is cut at the horizon, and says so in `until`.
    long = replace(settings, rolling_window_seconds=7 * 86400)
    document["settings"] = long.to_json()
    task.settings = long
    got = _project(report([(ledger_key(PROJECT), json.dumps(document))], now,
                          schedule=Schedule(now, [task])))  # fmt: skip
    assert datetime.fromisoformat(got["scheduled_today"]["until"]) == now + HORIZON
    assert len(got["scheduled_today"]["runs"]) == HORIZON // timedelta(hours=6)


def test_a_dag_catching_up_lists_its_first_runs_and_counts_them_all() -> None:
    from airflow_provider_clarity.connection.settings import QuotaSettings
    from airflow_provider_clarity.plan import TaskPlan
    from airflow_provider_clarity.plugins.quota_schedule import Schedule
    from airflow_provider_clarity.request import ClarityRequest

    now = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    settings = QuotaSettings(PROJECT)
    # catchup=True, paused for a week, hourly: 168 runs due, all shown at "now".
    task = TaskPlan("catching_up", "by_os", "export", "@hourly", [now] * 168, project_id=PROJECT,
                    settings=settings, request=ClarityRequest.build(1, ["OS"]))  # fmt: skip

    data = report([], now, schedule=Schedule(now, [task]))

    scheduled = _project(data)["scheduled_today"]
    assert scheduled["calls"] == len(scheduled["runs"]) == 168
    assert scheduled["over_by"] == 168 - settings.capacity
    html = quota_page.render(data)
    rows = html.count('<tr class="run">')
    assert rows == MAX_SCHEDULED_ROWS
    assert f"and {168 - rows} more: the JSON endpoint lists them all" in html
