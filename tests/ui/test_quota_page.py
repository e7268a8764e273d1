"""The "Clarity quota" page and its JSON endpoint, served by a real api-server.

Real exports (``dag.test()`` of ClarityExportOperator against the Clarity emulator) fill
the quota ledger in the suite's metadata DB; an ``airflow api-server`` on the same DB, with
the simple auth manager's users (one per role), serves the page. Chromium opens it from the
UI's navigation the way a user does, inside the UI's iframe.

``CLARITY_UPDATE_SCREENSHOTS=1`` (``make screenshots``) writes docs/img/quota-page.png.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "playwright.sync_api", reason="browser test skipped: the playwright package is not installed"
)

from playwright.sync_api import BrowserContext, Locator, Page, expect

from airflow_provider_clarity.quota import QuotaLedger, ledger_key
from airflow_provider_clarity.testing import ClarityEmulator
from tests.conftest import AIRFLOW_HOME
from tests.ui.conftest import ApiServer, running_api_server

pytestmark = pytest.mark.timeout(240)

Screenshot = Callable[[Page | Locator, str], Path]

PAGE = "/clarity-quota/"
ENDPOINT = "/clarity-quota/api/projects"
# name -> role; the simple auth manager lets "op" and "admin" read Variables, not the others.
USERS = {"admin": "admin", "operator": "op", "editor": "user", "viewer": "viewer"}
PASSWORDS = {name: f"{name}-password" for name in USERS}
PROJECT, SPENT = "demo-project", "spent-project"
DAG_ID = "clarity_quota_page"
SCHEDULED_DAG, SCHEDULED_CONN = "clarity_quota_page_every_2h", "clarity_quota_page_db"


@pytest.fixture(scope="module")
def quota_server(chromium: Path, airflow_db: Path) -> Iterator[ApiServer]:
    """An api-server on the suite's metadata DB, with one simple-auth-manager user per role."""
    passwords = AIRFLOW_HOME / "quota-page-passwords.json"
    passwords.write_text(json.dumps(PASSWORDS))
    overrides = {
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        # Ledgers are encrypted Variables: the server must use the suite's key to read them.
        "AIRFLOW__CORE__FERNET_KEY": os.environ["AIRFLOW__CORE__FERNET_KEY"],
    }
    with running_api_server(airflow_db, overrides, migrate=False) as server:
        yield server


@pytest.fixture
def clean_ledgers(airflow_db: Path) -> Iterator[None]:
    from airflow.models.variable import Variable

    keys = [ledger_key(PROJECT), ledger_key(SPENT)]
    for key in keys:
        Variable.delete(key)
    yield
    for key in keys:
        Variable.delete(key)


def test_only_users_who_may_read_variables_get_the_page_and_the_endpoint(
    quota_server: ApiServer,
) -> None:
    for path in (PAGE, ENDPOINT):
        status, _ = quota_server.get(path)
        assert status == 401, f"anonymous {path}: {status}"
        status, _ = quota_server.get(path, token="not-a-jwt")
        assert status == 403, f"bad token {path}: {status}"
        for user, role in USERS.items():
            status, body = quota_server.get(path, token=quota_server.login(user, PASSWORDS[user]))
            expected = 200 if role in ("op", "admin") else 403
            assert status == expected, f"{user} ({role}) {path}: {status} {body[:200]!r}"


def _fill_ledgers(
    emulator: ClarityEmulator, run_dag: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, str]:
    """Three mapped exports for PROJECT (all its 3 calls), one 429 for SPENT; the run, token."""
    token = emulator.issue_token(PROJECT)
    # 4 a day with 1 reserved leaves Airflow 3: the three exports spend them all.
    conn = emulator.airflow_conn_json(token, project_id=PROJECT, daily_limit=4, reserve=1)
    monkeypatch.setenv("AIRFLOW_CONN_CLARITY_DEFAULT", conn)
    # Someone outside Airflow spent SPENT's calls: Clarity answers 429.
    emulator.consume_quota(SPENT)
    spent_conn = emulator.airflow_conn_json(emulator.issue_token(SPENT), project_id=SPENT)
    monkeypatch.setenv("AIRFLOW_CONN_CLARITY_SPENT", spent_conn)
    dag_file = tmp_path / f"{DAG_ID}.py"
    dag_file.write_text(
        textwrap.dedent(
            f"""
            from datetime import datetime

            from airflow.sdk import DAG

            from airflow_provider_clarity.operators.export import ClarityExportOperator

            with DAG("{DAG_ID}", schedule=None, start_date=datetime(2025, 1, 1), catchup=False):
                ClarityExportOperator.partial(task_id="by_dimension").expand(
                    dimensions=[["OS"], ["Device"], ["Browser"]]
                )
                ClarityExportOperator(
                    task_id="spent_project",
                    clarity_conn_id="clarity_spent",
                    on_quota_exhausted="skip",
                )
            """
        )
    )
    run = run_dag(dag_file, DAG_ID, logical_date=datetime.now(UTC))
    states = {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}
    assert states == {
        ("by_dimension", 0): "success",
        ("by_dimension", 1): "success",
        ("by_dimension", 2): "success",
        ("spent_project", -1): "skipped",
    }
    assert emulator.total_requests(PROJECT) == 3 and emulator.total_requests(SPENT) == 1
    return run, token


@pytest.fixture
def scheduled_export(
    clarity_emulator: ClarityEmulator, scheduled_dags: Any, tmp_path: Path
) -> Iterator[str]:
    """An unpaused DAG exporting for PROJECT every two hours, through a connection stored in
    the metadata DB (the api-server reads it there, offline); the DAG's id."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    conn = json.loads(
        clarity_emulator.airflow_conn_json(
            clarity_emulator.issue_token(PROJECT), project_id=PROJECT, daily_limit=4, reserve=1
        )
    )
    with create_session() as session:
        session.add(
            Connection(
                conn_id=SCHEDULED_CONN,
                conn_type=conn["conn_type"],
                host=conn["host"],
                password=conn["password"],
                extra=json.dumps(conn["extra"]),
            )
        )
    dag_file = tmp_path / f"{SCHEDULED_DAG}.py"
    dag_file.write_text(
        textwrap.dedent(
            f"""
            from datetime import datetime

            from airflow.sdk import DAG

            from airflow_provider_clarity.operators.export import ClarityExportOperator

            with DAG("{SCHEDULED_DAG}", schedule="0 */2 * * *", start_date=datetime(2025, 1, 1),
                     catchup=False):
                ClarityExportOperator(
                    task_id="by_country", clarity_conn_id="{SCHEDULED_CONN}", dimensions="Country"
                )
            """
        )
    )
    scheduled_dags(dag_file, SCHEDULED_DAG)
    yield SCHEDULED_DAG
    with create_session() as session:
        session.query(Connection).filter_by(conn_id=SCHEDULED_CONN).delete()


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def test_page_shows_the_calls_real_exports_made(
    quota_server: ApiServer,
    clean_ledgers: None,
    clarity_emulator: ClarityEmulator,
    run_dag: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    browser_context: BrowserContext,
    page: Page,
    screenshot: Screenshot,
    scheduled_export: str,
) -> None:
    run, clarity_token = _fill_ledgers(clarity_emulator, run_dag, tmp_path, monkeypatch)
    # What the ledger itself says, read in this process: the page must agree.
    ledger = QuotaLedger(PROJECT, daily_limit=4, reserve=1)
    spent = QuotaLedger(SPENT)
    assert ledger.remaining() == 0 and spent.remaining() == 0
    next_reset, spent_reset = ledger.next_reset(), spent.next_reset()

    operator = quota_server.login("operator", PASSWORDS["operator"])
    status, body = quota_server.get(ENDPOINT, token=operator)
    assert status == 200
    data = json.loads(body)
    projects = {p["project_id"]: p for p in data["projects"]}
    demo = projects[PROJECT]
    assert (demo["remaining"], demo["used"], demo["capacity"]) == (0, 3, 3)
    assert datetime.fromisoformat(demo["next_reset"]) == next_reset
    assert demo["exhausted_until"] is None
    callers = sorted((c["caller"]["map_index"], c["outcome"], c["counted"]) for c in demo["calls"])
    assert callers == [(0, "200", True), (1, "200", True), (2, "200", True)]
    first = next(c for c in demo["calls"] if c["caller"]["map_index"] == 0)
    assert first["caller"]["run_id"] == run.run_id
    assert first["caller"]["url"].endswith("/tasks/by_dimension/mapped/0")
    assert [c["outcome"] for c in projects[SPENT]["calls"]] == ["429"]
    assert datetime.fromisoformat(projects[SPENT]["exhausted_until"]) == spent_reset
    # Still scheduled before the reset: every 2 hours until midnight (00:00 is before the
    # window's end, 00:01), the next one as soon as can be if the scheduler is behind.
    scheduled = demo["scheduled_today"]
    until = datetime.fromisoformat(scheduled["until"])
    assert until == datetime.fromisoformat(demo["window_end"])
    now = datetime.fromisoformat(data["generated_at"])
    midnight = until.replace(hour=0, minute=0, second=0)
    fires = [midnight - timedelta(hours=2 * k) for k in range(13)]
    fires = [f for f in fires if f > now]  # 00:00, 22:00, ... after now
    times = [datetime.fromisoformat(r["at"]) for r in scheduled["runs"]]
    assert {(r["dag_id"], r["task_id"], r["calls"]) for r in scheduled["runs"]} == {
        (scheduled_export, "by_country", 1)
    }
    assert len(times) in (len(fires), len(fires) + 1), (times, fires)  # + one overdue
    assert all(now <= t < until for t in times)
    assert scheduled["calls"] == len(times) and scheduled["over_by"] == len(times)
    assert scheduled["pending"] == [] and scheduled["hidden_calls"] == 0  # op reads every DAG
    assert data["schedule_error"] is None

    # The user's way in: the UI's session cookie, then Browse > Clarity quota.
    browser_context.add_cookies(
        [{"name": "_token", "value": operator, "url": quota_server.base_url}]
    )
    try:
        page.set_viewport_size({"width": 1400, "height": 1250})
        page.goto(f"{quota_server.base_url}/")
        page.get_by_role("button", name="Browse").click()
        page.get_by_role("menuitem", name="Clarity quota").click()
        expect(page).to_have_url(re.compile(r"/plugin/clarity-quota(/|$)"))
        frame = page.frame_locator("iframe")
        demo_card = frame.locator(f'section[data-project="{PROJECT}"]')
        expect(demo_card.locator(".remaining")).to_have_text("0")
        expect(demo_card.locator(".used")).to_have_text("3 of 3")
        expect(demo_card.locator(".next-reset")).to_have_text(_utc(next_reset))
        expect(demo_card.locator("svg.timeline g.call")).to_have_count(3)
        expect(demo_card.locator(".calls tbody tr")).to_have_count(3)
        expect(demo_card.locator(".scheduled-runs tbody tr")).to_have_count(len(times))
        expect(demo_card.locator("b.scheduled")).to_have_text(str(len(times)))
        expect(demo_card.locator("svg.timeline g.scheduled")).to_have_count(len(times))
        expect(demo_card.locator(".badge.over")).to_have_text(
            f"{len(times)} scheduled call(s) over"
        )
        for index in range(3):
            link = demo_card.locator(f'a[href$="/tasks/by_dimension/mapped/{index}"]')
            expect(link).to_have_text(f"{DAG_ID} / by_dimension [{index}]")
        spent_card = frame.locator(f'section[data-project="{SPENT}"]')
        expect(spent_card.locator(".badge.exhausted")).to_have_text(
            f"Exhausted until {_utc(spent_reset)}"
        )
        expect(spent_card.locator("tbody tr")).to_contain_text("429")
        html = frame.locator("html").inner_html()
        assert clarity_token not in html and operator not in html
        screenshot(page, "quota-page.png")

        # A caller links to its task instance page, opened in the whole window.
        demo_card.locator('a[href$="/mapped/1"]').click()
        expect(page).to_have_url(
            re.compile(rf"/dags/{DAG_ID}/runs/.+/tasks/by_dimension/mapped/1$")
        )
    finally:
        browser_context.clear_cookies()
