"""The quota page's report and HTML, from ledger documents written by the real QuotaLedger."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_clarity.connection.known import ProjectSettings
from airflow_provider_clarity.connection.settings import QuotaSettings
from airflow_provider_clarity.plugins import quota_page
from airflow_provider_clarity.plugins.page_data import parse_caller, project_report, report
from airflow_provider_clarity.quota import MemoryLedgerStore, QuotaLedger, ledger_key

NOON = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def _ledger(store: MemoryLedgerStore, at: datetime, **kwargs: Any) -> QuotaLedger:
    return QuotaLedger("demo-project", store=store, clock=lambda: at, **kwargs)


def _spend(store: MemoryLedgerStore, at: datetime, outcome: str = "200", **kwargs: Any) -> None:
    ledger = _ledger(store, at, caller=kwargs.pop("caller", "d/t/manual__1/-1"), **kwargs)
    ledger.before_call(None)
    ledger.after_call(None, outcome)


def test_report_agrees_with_the_ledger_and_splits_windows() -> None:
    store = MemoryLedgerStore()
    _spend(store, NOON - timedelta(days=1), daily_limit=4, reserve=1)  # yesterday: not counted
    _spend(store, NOON - timedelta(hours=3), daily_limit=4, reserve=1, caller="d/t/r/2")
    _spend(store, NOON - timedelta(hours=2), "401", daily_limit=4, reserve=1)
    _spend(store, NOON - timedelta(hours=1), "500", daily_limit=4, reserve=1)
    assert store.data is not None
    ledger = _ledger(store, NOON, daily_limit=4, reserve=1)

    got = project_report(store.data, NOON, ui_base="/airflow")

    assert (got["capacity"], got["used"], got["remaining"]) == (3, 2, ledger.remaining())
    assert got["next_reset"] == NOON.isoformat()  # a call is available now
    assert [(c["outcome"], c["counted"], c["in_window"]) for c in got["calls"]] == [
        ("200", False, False),
        ("200", True, True),
        ("401", False, True),
        ("500", True, True),
    ]
    assert got["calls"][1]["caller"]["url"] == "/airflow/dags/d/runs/r/tasks/t/mapped/2"
    # The ledger's UTC day starts at midnight plus its 60 s margin, as its usage report says.
    assert got["window_start"] == "2026-03-04T00:01:00+00:00"
    assert got["exhausted_until"] is None and got["degraded_until"] is None


def test_spent_project_shows_when_the_next_call_is_possible() -> None:
    store = MemoryLedgerStore()
    _spend(store, NOON, "429")
    assert store.data is not None

    got = project_report(store.data, NOON + timedelta(minutes=1))

    assert got["remaining"] == 0
    assert got["exhausted_until"] == "2026-03-05T00:01:00+00:00" == got["next_reset"]
    html = quota_page.render({"generated_at": NOON.isoformat(), "projects": [got]})
    assert "Exhausted until 2026-03-05 00:01:00 UTC" in html


def test_degraded_until_from_a_newer_ledger_is_shown_while_it_lasts() -> None:
    store = MemoryLedgerStore()
    _spend(store, NOON)
    assert store.data is not None
    document = {**store.data, "degraded_until": (NOON + timedelta(minutes=30)).isoformat()}

    now = project_report(document, NOON)
    later = project_report(document, NOON + timedelta(hours=1))

    assert now["degraded_until"] == "2026-03-04T12:30:00+00:00"
    assert later["degraded_until"] is None
    html = quota_page.render({"generated_at": NOON.isoformat(), "projects": [now]})
    assert "Clarity degraded until 2026-03-04 12:30:00 UTC" in html


def test_rolling_window_timeline_ends_now() -> None:
    store = MemoryLedgerStore()
    _spend(store, NOON - timedelta(minutes=30), window="rolling", rolling_window_seconds=3600)
    assert store.data is not None

    got = project_report(store.data, NOON)

    assert got["window_start"] == (NOON - timedelta(hours=1)).isoformat()
    assert got["window_end"] == NOON.isoformat()
    assert [c["counted"] for c in got["calls"]] == [True]


@pytest.mark.parametrize(
    ("label", "url"),
    [
        (
            "dag/task/manual__2026-03-04T12:00:00+00:00/-1",
            "/dags/dag/runs/manual__2026-03-04T12%3A00%3A00%2B00%3A00/tasks/task",
        ),
        ("dag/task/run/with/slash/3", "/dags/dag/runs/run%2Fwith%2Fslash/tasks/task/mapped/3"),
        ("outside-airflow", None),
        ("someone/by/hand", None),
    ],
)
def test_parse_caller_links_task_instances_only(label: str, url: str | None) -> None:
    assert parse_caller(label)["url"] == url


def test_page_escapes_what_the_ledger_holds_and_reports_broken_ledgers() -> None:
    store = MemoryLedgerStore()
    _spend(store, NOON, caller="<script>alert(1)</script>")
    data = report(
        [(ledger_key("demo-project"), json.dumps(store.data)), ("clarity_quota__broken", "[1]")],
        NOON,
    )

    html = quota_page.render(data)

    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    broken = next(p for p in data["projects"] if p["variable_key"] == "clarity_quota__broken")
    assert "is not a JSON object" in broken["error"]
    assert "Ledger unreadable" in html


# ------------------------------------------------------------------ what exports will do


def _document(project_id: str, callers: list[str], **settings: Any) -> dict[str, Any]:
    """A real ledger document of ``project_id`` with one 200 call per caller, in the hour
    before NOON."""
    store = MemoryLedgerStore()
    settings.setdefault("daily_limit", max(10, len(callers) + 1))
    for n, caller in enumerate(callers):
        at = NOON - timedelta(hours=1) + timedelta(seconds=n)
        ledger = QuotaLedger(
            project_id, store=store, clock=lambda at=at: at, caller=caller, **settings
        )
        ledger.before_call(None)
        ledger.after_call(None, "200")
    document = store.data
    assert document is not None
    return document


def _variables(*documents: dict[str, Any]) -> list[tuple[str, str]]:
    return [(ledger_key(d["project_id"]), json.dumps(d)) for d in documents]


def test_a_project_is_counted_with_its_connection_not_the_stored_settings() -> None:
    generous = _document("demo-project", ["d/t/r/-1"], daily_limit=1000)
    connection = ProjectSettings(QuotaSettings("demo-project", reserve=1), ("clarity_demo",))

    got = report(_variables(generous), NOON, connections={"demo-project": connection})
    fallback = report(_variables(generous), NOON)

    project = got["projects"][0]
    assert (project["capacity"], project["used"], project["remaining"]) == (9, 1, 8)
    assert project["settings"]["daily_limit"] == 10
    assert project["settings_source"] == {
        "kind": "connection",
        "detail": "connection 'clarity_demo'",
        "stored_differ": True,
    }
    html = quota_page.render(got)
    assert '<b class="remaining">8</b>' in html and "connection &#x27;clarity_demo&#x27;" in html
    # No connection names the project: the stored settings, and the page says so.
    stored = fallback["projects"][0]
    assert (stored["remaining"], stored["settings_source"]["kind"]) == (999, "stored")
    assert "no clarity connection Airflow can list names this project" in quota_page.render(
        fallback
    )


def test_dags_the_user_may_not_read_are_counted_never_named() -> None:
    shared = _document("shared-project", ["seen/t/r1/-1", "secret/t/r1/-1", "outside-airflow"])
    theirs = _document("their-project", ["secret/t/r1/-1", "secret/u/r1/-1"])
    nobody = _document("manual-project", ["outside-airflow"])

    data = report(_variables(shared, theirs, nobody), NOON, readable={"seen"}, ui_base="/ui")

    projects = {p["project_id"]: p for p in data["projects"]}
    assert sorted(projects) == ["manual-project", "shared-project"]
    assert data["hidden_projects"] == 1
    mine = projects["shared-project"]
    assert (mine["used"], mine["remaining"]) == (3, 7)  # the quota is shared: all counted
    callers = [c["caller"] for c in mine["calls"]]
    assert [(c["label"], c["hidden"], c["url"]) for c in callers] == [
        ("seen/t/r1/-1", False, "/ui/dags/seen/runs/r1/tasks/t"),
        ("hidden DAG", True, None),
        ("outside-airflow", False, None),
    ]
    html = quota_page.render(data)
    assert "secret" not in html and "their-project" not in html
    assert "secret" not in json.dumps(data) and "their-project" not in json.dumps(data)
    assert "a DAG you may not read" in html and "1 project(s) used only by DAGs" in html
    # Everyone sees everything when the auth manager names no restriction.
    assert report(_variables(shared, theirs, nobody), NOON)["hidden_projects"] == 0


def test_the_page_is_bounded_newest_calls_first_and_fifty_projects_a_page() -> None:
    busy = _document("busy-project", [f"d/t/r{n}/-1" for n in range(250)])
    data = report(_variables(busy), NOON)
    project = data["projects"][0]

    assert len(project["calls"]) == 200 and project["calls_not_shown"] == 50
    assert project["used"] == 250  # counted in full
    assert project["calls"][-1]["caller"]["run_id"] == "r249"  # the newest are kept
    assert project["calls"][0]["caller"]["run_id"] == "r50"
    html = quota_page.render(data)
    assert html.count("<tr><td") == 200 and "50 more not shown" in html

    one = _document("p-000", ["d/t/r/-1"])
    many = [
        (ledger_key(f"p-{n:03}"), json.dumps({**one, "project_id": f"p-{n:03}"}))
        for n in range(120)
    ]
    pages = [report(many, NOON, page=n) for n in (1, 2, 3, 4)]
    assert [len(p["projects"]) for p in pages] == [50, 50, 20, 0]
    assert [(p["page"], p["pages"], p["projects_total"]) for p in pages[:1]] == [(1, 3, 120)]
    assert pages[1]["projects"][0]["project_id"] == "p-050"
    middle = quota_page.render(pages[1])
    assert 'href="?page=1"' in middle and 'href="?page=3"' in middle
    last = quota_page.render(pages[2])
    assert 'href="?page=2"' in last and "?page=4" not in last


def test_stored_strings_reach_the_page_escaped_and_a_pool_fault_is_a_banner() -> None:
    hostile = _document("demo-project", ["d/t/\x1b[2J\u202eevil\r/-1", "x\x1b]0;t\x07\u2066"])
    fault = "Fault: the pool 'clarity_api' has 4 slots"

    data = report(_variables(hostile), NOON, pool_fault=fault)
    html = quota_page.render(data)

    for raw in ("\x1b", "\u202e", "\r", "\x07", "\u2066"):
        assert raw not in html
    assert "x\\x1b]0;t\\x07\\u2066" in html
    assert json.loads(json.dumps(data))["projects"][0]["calls"][1]["caller"]["label"] == (
        "x\x1b]0;t\x07\u2066"  # JSON carries the stored string exactly, escaped by JSON itself
    )
    assert data["pool_fault"] == fault
    assert f'<p class="badge error pool-fault">{fault.replace(chr(39), "&#x27;")}</p>' in html


def test_a_planted_no_ledger_mark_cannot_make_a_ledger_read_as_empty() -> None:
    """Only the page itself marks a project as having no ledger yet; a stored key cannot."""
    planted = _document("demo-project", ["d/t/r/-1"] * 10)
    planted["_no_ledger_yet"] = True
    connection = ProjectSettings(QuotaSettings("demo-project"), ("clarity_demo",))
    got = report(_variables(planted), NOON, connections={"demo-project": connection})
    [project] = got["projects"]
    assert project.get("remaining") != 10
    assert "ClarityLedgerError" in project["error"]
    # A project known from its connection alone still shows, with no call.
    fresh = report({}, NOON, connections={"demo-project": connection})["projects"][0]
    assert (fresh["used"], fresh["remaining"]) == (0, 10)
