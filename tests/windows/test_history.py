"""Issue 11's done-when: a week of the daily example DAG, on time and with a late run and
an unpause, against the emulator with one injected clock for both sides.

Each day is one ``dag.test()`` of ``example_dags/clarity_daily_snapshot.py`` (5 exports,
5 calls) with the run's ``run_after`` set as the scheduler would, while the provider's
clock (``clock.use_clock``) and the emulator's ``clock=`` read the simulated call time.
The week's files are then checked with the ``history`` command and read by the DuckDB
and PostgreSQL recipes of ``docs/warehouse.md`` (the SQL and loader as written there, the
PostgreSQL one on a private server), whose documented results the test compares with.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_clarity.quota import ledger_key
from airflow_provider_clarity.testing.emulator import ClarityEmulator
from airflow_provider_clarity.windows import history
from airflow_provider_clarity.windows.clock import use_clock
from tests.conftest import REPO_ROOT
from tests.integration.services import Postgres, postgres_bin

DAILY = REPO_ROOT / "example_dags" / "clarity_daily_snapshot.py"
WAREHOUSE_DOC = REPO_ROOT / "docs" / "warehouse.md"
TASKS = ("snapshot", "by_os", "by_device", "by_country_device", "by_url")
FIRST = datetime(2026, 11, 27, 0, 5, tzinfo=UTC)  # the schedule "5 0 * * *"
DAY = timedelta(days=1)

# (run_after, call time) per run: the scheduler's slot, and when the task really called.
ON_TIME = [(FIRST + i * DAY, FIRST + i * DAY) for i in range(7)]
LATE = [
    (FIRST, FIRST),
    (FIRST + DAY, FIRST + DAY),
    # 11-29: the pool was busy, the call went out 40 minutes late.
    (FIRST + 2 * DAY, FIRST + 2 * DAY + timedelta(minutes=40)),
    (FIRST + 3 * DAY, FIRST + 3 * DAY),
    # Paused after 11-30's run; unpaused 12-01 23:52: catchup=False runs the 12-01 00:05
    # slot at once, 23 h 47 min late, and the 12-02 00:05 run follows on time.
    (FIRST + 4 * DAY, FIRST + 4 * DAY + timedelta(hours=23, minutes=47)),
    (FIRST + 5 * DAY, FIRST + 5 * DAY),
    (FIRST + 6 * DAY, FIRST + 6 * DAY),
]


@dataclass
class SimClock:
    """Both sides' "now": the simulated call time of the run in progress."""

    at: datetime = FIRST

    def __call__(self) -> datetime:
        return self.at


@dataclass
class Week:
    base: Path
    project: str
    summaries: list[dict[str, dict[str, Any]]]  # per run: task_id -> return value


def _return_values(run: Any) -> dict[str, dict[str, Any]]:
    import json

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(XComModel)
            .filter_by(dag_id=run.dag_id, run_id=run.run_id, key="return_value")
            .all()
        )
        return {
            row.task_id: json.loads(row.value) if isinstance(row.value, str) else row.value
            for row in rows
        }


def simulate(
    runs: list[tuple[datetime, datetime]],
    project: str,
    base: Path,
    run_dag: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Week:
    from airflow.models.variable import Variable

    clock = SimClock()
    monkeypatch.setenv("AIRFLOW_VAR_CLARITY_EXPORT_BASE", base.as_uri())
    Variable.delete(ledger_key(project))
    summaries = []
    with ClarityEmulator(clock=clock, seed=11) as emulator:
        # A long-lived token: the hook checks expiry against the real clock.
        token = emulator.issue_token(project, expires_in=timedelta(days=36500))
        monkeypatch.setenv(
            "AIRFLOW_CONN_CLARITY_DEFAULT", emulator.airflow_conn_json(token, project_id=project)
        )
        try:
            for run_after, call_at in runs:
                clock.at = call_at
                with use_clock(clock):
                    run = run_dag(
                        DAILY, "clarity_daily_snapshot", logical_date=run_after, run_after=run_after
                    )
                assert run.state == "success", (run_after, run.state)
                summaries.append(_return_values(run))
            assert emulator.total_requests() == len(runs) * len(TASKS)
        finally:
            Variable.delete(ledger_key(project))
    return Week(base, project, summaries)


@pytest.fixture(scope="module")
def weeks(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Week]]:
    """Both simulated weeks, run once for the module (70 calls, 14 dag.test runs)."""
    from tests.conftest import DAGS_FOLDER

    patch = pytest.MonkeyPatch()
    copied = DAGS_FOLDER / DAILY.name

    def run_dag(dag_file: Path, dag_id: str, **kwargs: Any) -> Any:
        import shutil

        from airflow_provider_clarity.version_compat import DagBag

        shutil.copy(dag_file, copied)
        bag = DagBag(dag_folder=str(copied))
        assert not bag.import_errors, bag.import_errors
        return bag.get_dag(dag_id).test(**kwargs)

    try:
        yield {
            "on_time": simulate(
                ON_TIME, "shop-on-time", tmp_path_factory.mktemp("on-time"), run_dag, patch
            ),
            "late": simulate(LATE, "shop", tmp_path_factory.mktemp("late"), run_dag, patch),
        }
    finally:
        patch.undo()
        copied.unlink(missing_ok=True)


def _coverage(week: Week, task_id: str) -> list[tuple[Any, Any]]:
    return [(s[task_id]["overlap_minutes"], s[task_id]["gap_minutes"]) for s in week.summaries]


@pytest.mark.parametrize("task_id", TASKS)
def test_on_time_week_meets_back_to_back(weeks: dict[str, Week], task_id: str) -> None:
    # The first run has no earlier snapshot in the ledger: nothing to compare.
    assert _coverage(weeks["on_time"], task_id) == [(None, None)] + [(0, 0)] * 6


@pytest.mark.parametrize("task_id", TASKS)
def test_late_run_and_unpause_are_reported_in_minutes(weeks: dict[str, Week], task_id: str) -> None:
    assert _coverage(weeks["late"], task_id) == [
        (None, None),
        (0, 0),
        (0, 40),  # 40 min late: a 40 min gap after 11-28's window ...
        (40, 0),  # ... and the next on-time run overlaps it by 40 min
        (0, 1427),  # unpaused 23 h 47 min late: 11-30 00:05 -> 12-01 23:52 came after...
        (1427, 0),  # ... and 12-02 00:05's window overlaps it by 23 h 47 min
        (0, 0),
    ]


def _doc_block(marker: str) -> str:
    """The block (code or table) that follows ``<!-- marker -->`` in the warehouse guide."""
    text = WAREHOUSE_DOC.read_text()
    after = text.split(f"<!-- {marker} -->", 1)[1]
    fenced = re.match(r"\s*```\w*\n(.*?)```", after, re.S)
    if fenced:
        return fenced.group(1)
    return re.match(r"\s*((?:\|.*\|\n)+)", after).group(1)  # type: ignore[union-attr]


def _doc_table(marker: str) -> list[list[str]]:
    lines = _doc_block(marker).strip().splitlines()
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def test_duckdb_recipe_returns_what_the_docs_say(weeks: dict[str, Week]) -> None:
    import duckdb

    week = weeks["late"]
    sql = _doc_block("recipe: duckdb").replace("/data/clarity", str(week.base))
    rows = duckdb.connect().sql(sql).fetchall()

    got = [[str(value) for value in row] for row in rows]
    assert got == _doc_table("result: duckdb"), _as_table(got)


@pytest.fixture(scope="module")
def warehouse() -> Iterator[Postgres]:
    """A private PostgreSQL server on a loopback port (tests/integration/services.py)."""
    if postgres_bin() is None:
        pytest.skip("postgresql not installed; run `make services` (apt-get install postgresql)")
    server = Postgres.start()
    try:
        yield server
    finally:
        server.stop()


def _pg_rows(dsn: str, sql: str) -> list[list[str]]:
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql)
            if cur.description is None:  # DDL: no rows
                return []
            return [[str(value) for value in row] for row in cur.fetchall()]
    finally:
        conn.close()


def _csv_twin(raw_file: Path, folder: Path) -> Path:
    """What the operator writes with ``output_format="csv"`` for the answer kept in ``raw_file``."""
    import json

    from airflow_provider_clarity.outputs.formats import encode

    raw = json.loads(raw_file.read_text())
    dimensions = [v for k, v in sorted(raw["request"].items()) if k.startswith("dimension")]
    target = folder / raw_file.parent.name / raw_file.name.replace(".raw.json", ".csv")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(
        encode(
            raw["response"],
            "csv",
            exported_at=raw["exported_at"],
            num_of_days=int(raw["request"]["numOfDays"]),
            project_id=raw["project_id"],
            dimensions=dimensions,
        )
    )
    return target


def test_postgres_recipe_loads_once_and_returns_what_the_docs_say(
    weeks: dict[str, Week],
    warehouse: Postgres,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import pandas as pd

    week = weeks["late"]
    dsn = warehouse.dsn
    parquet = sorted(week.base.glob("dt=*/*.parquet"))
    parquet_rows = sum(len(pd.read_parquet(path)) for path in parquet)
    assert len(parquet) == len(LATE) * len(TASKS)

    _pg_rows(dsn, _doc_block("recipe: postgres-table"))
    monkeypatch.setenv("WAREHOUSE_DSN", dsn)
    loader = _doc_block("recipe: postgres-load").replace("/data/clarity", str(week.base))
    namespace: dict[str, Any] = {}
    exec(compile(loader, str(WAREHOUSE_DOC), "exec"), namespace)
    assert capsys.readouterr().out == f"{parquet_rows} rows added\n"
    count = "SELECT count(*) FROM clarity_history"
    assert _pg_rows(dsn, count) == [[str(parquet_rows)]]

    # The same files again, and the CSV twins of three days: the key finds every row there.
    load = namespace["load"]
    assert load(dsn, [str(path) for path in parquet]) == 0
    twins = [
        _csv_twin(raw, tmp_path / "late")
        for day in ("2026-11-28", "2026-11-29", "2026-11-30")
        for raw in sorted((week.base / f"dt={day}").glob("*.raw.json"))
    ]
    assert load(dsn, [str(path) for path in twins]) == 0
    assert _pg_rows(dsn, count) == [[str(parquet_rows)]]

    _pg_rows(dsn, _doc_block("recipe: postgres-view"))
    snapshot = _pg_rows(dsn, _doc_block("recipe: postgres-snapshot"))
    assert snapshot == _doc_table("result: postgres-snapshot"), _as_table(snapshot)
    assert snapshot == _doc_table("result: duckdb")
    breakdown = _pg_rows(dsn, _doc_block("recipe: postgres-breakdown"))
    assert breakdown == _doc_table("result: postgres-breakdown"), _as_table(breakdown)

    # A CSV day not loaded before: every row arrives, typed as the Parquet ones.
    on_time = weeks["on_time"]
    new = [_csv_twin(raw, tmp_path / "on-time") for raw in on_time.base.glob("dt=*/*.raw.json")]
    expected = sum(len(pd.read_parquet(path)) for path in on_time.base.glob("dt=*/*.parquet"))
    assert load(dsn, [str(path) for path in new]) == expected
    sessions = (
        "SELECT sum(total_session_count), count(DISTINCT window_end) FROM clarity_daily"
        f" WHERE project_id = '{on_time.project}' AND dimensions = '' AND metric = 'Traffic'"
    )
    frames = [pd.read_parquet(path) for path in on_time.base.glob("dt=*/snapshot.parquet")]
    total = sum(int(f[f.metric == "Traffic"].total_session_count.sum()) for f in frames)
    assert _pg_rows(dsn, sessions) == [[str(total), str(len(ON_TIME))]]


def _as_table(rows: list[list[str]]) -> str:
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def test_history_command_lists_the_gaps_and_overlaps(
    weeks: dict[str, Week], capsys: pytest.CaptureFixture[str]
) -> None:
    assert history.main([str(weeks["on_time"].base)]) == 0
    assert "no gap or overlap above 15 min" in capsys.readouterr().out

    week = weeks["late"]
    windows, findings = history.check(week.base)
    assert len(windows) == len(LATE) * len(TASKS)
    found = {(f.later.dimensions, f.kind, f.minutes, f.later.path.split("/")[0]) for f in findings}
    expected = set()
    for dimensions in ("", "OS", "Device", "Country,Device", "URL"):
        expected |= {
            (dimensions, "gap", 40, "dt=2026-11-28"),
            (dimensions, "overlap", 40, "dt=2026-11-29"),
            (dimensions, "gap", 1427, "dt=2026-11-30"),
            (dimensions, "overlap", 1427, "dt=2026-12-01"),
        }
    assert found == expected
    assert history.main([str(week.base)]) == 1
    out = capsys.readouterr().out
    assert "shop (snapshot): 7 snapshots" in out
    assert "shop Country,Device: 1427 min overlap between dt=2026-11-30/" in out


def test_a_skipped_day_alerts_through_the_example_callback(
    airflow_db: Path,
    run_dag: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A run 3 days late is stale: skipped, no call, and the on_skipped_callback alerts."""
    from airflow.models.variable import Variable

    clock = SimClock(FIRST + 3 * DAY)
    monkeypatch.setenv("AIRFLOW_VAR_CLARITY_EXPORT_BASE", tmp_path.as_uri())
    with ClarityEmulator(clock=clock, seed=11) as emulator:
        token = emulator.issue_token("shop-missed", expires_in=timedelta(days=36500))
        monkeypatch.setenv(
            "AIRFLOW_CONN_CLARITY_DEFAULT",
            emulator.airflow_conn_json(token, project_id="shop-missed"),
        )
        try:
            with use_clock(clock), caplog.at_level("ERROR", logger="clarity.history"):
                run = run_dag(DAILY, "clarity_daily_snapshot", logical_date=FIRST, run_after=FIRST)
        finally:
            Variable.delete(ledger_key("shop-missed"))
        assert emulator.total_requests() == 0
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == dict.fromkeys(TASKS, "skipped")
    alerts = [r.getMessage() for r in caplog.records if r.name == "clarity.history"]
    assert sorted(alerts) == sorted(
        f"Clarity history: clarity_daily_snapshot.{task} was skipped for run {run.run_id}; "
        "that day is missing for good."
        for task in TASKS
    )
    assert not list(tmp_path.rglob("*.parquet"))
