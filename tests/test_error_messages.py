"""What a new user sees when something is wrong, and that it says what to do next.

Each case is the mistake a user makes on the first day: a bad token, a typo in a dimension,
a week of data, no pool, no quota left, no ``amazon`` extra, a folder that cannot be
written. The checks are on the facts a user needs: what went wrong, which connection,
field or value, and the fix. The API token must never appear in any of it.

One ``dag.test()`` run covers the failures a task meets at run time (its task log is what
the user reads); parse-time errors are read from a ``DagBag`` as the DAG processor would
report them; the rest call the operator or hook directly, which raise and log exactly what
the task log shows.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest

from airflow_provider_clarity.exceptions import (
    ClarityAuthError,
    ClarityQuotaExceededError,
    ClarityRequestError,
)
from airflow_provider_clarity.hooks.clarity import ClarityHook
from airflow_provider_clarity.operators.export import ClarityExportOperator
from airflow_provider_clarity.quota import MemoryLedgerStore, QuotaLedger, ledger_key
from airflow_provider_clarity.testing.emulator import ClarityEmulator
from airflow_provider_clarity.version_compat import AirflowRescheduleException
from tests.operators.fixtures import conn, ledger_store, make_context, spend_ledger  # noqa: F401

PROJECT = "demo-project"
GARBAGE = "my-clarity-password-123"  # what people paste when they expect a password
VALID = "Browser, Device, Country, OS, Source, Medium, Campaign, Channel, URL"


def _dag_file(folder: Path, dag_id: str, body: str) -> Path:
    path = folder / f"{dag_id}.py"
    header = f"""
        from datetime import datetime

        from airflow.sdk import DAG

        from airflow_provider_clarity.operators.export import ClarityExportOperator

        with DAG("{dag_id}", schedule=None, start_date=datetime(2025, 1, 1), catchup=False):
        """
    path.write_text(textwrap.dedent(header) + textwrap.indent(textwrap.dedent(body), "    "))
    return path


def _one_line(text: str) -> str:
    """Join the lines of a log so that a message wrapped by the log format still matches."""
    return re.sub(r"\s+", " ", text)


def _raised(log: str, exception: str, marker: str) -> str:
    """The message of the ``exception`` a task failed with, as its task log shows it."""
    prefix = f"airflow_provider_clarity.exceptions.{exception}: "
    lines = [line for line in log.splitlines() if line.startswith(prefix) and marker in line]
    assert len(lines) == 1, f"{exception} with {marker!r} not in the task log once: {lines}"
    return lines[0].removeprefix(prefix)


# ------------------------------------------------------------------ run time, in a real DAG run


RUN_TIME_PROJECTS = ("p-garbage", "p-other-key", "p-expired", "p-no-scope", "p-429", "p-spent")


@pytest.fixture
def run_time_setup(
    clarity_emulator: ClarityEmulator, airflow_db: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """One connection per mistake, each for its own project so their ledgers stay apart."""
    from airflow.models.variable import Variable

    now = datetime.now(UTC)
    other_key = jwt.encode(
        {
            "iss": "clarity",
            "aud": "clarity.data-exporter",
            "sub": "p-other-key",
            "exp": int((now + timedelta(days=30)).timestamp()),
            "scope": "Data.Export",
        },
        "a-key-that-is-not-clarity's-key-32b",
        algorithm="HS256",
    )
    tokens = {
        "clarity_garbage": (GARBAGE, "p-garbage"),
        "clarity_other_key": (other_key, "p-other-key"),
        "clarity_expired": (clarity_emulator.issue_token("p-expired", expired=True), "p-expired"),
        "clarity_no_scope": (clarity_emulator.issue_token("p-no-scope", scope=None), "p-no-scope"),
        "clarity_429": (clarity_emulator.issue_token("p-429"), "p-429"),
        "clarity_spent": (clarity_emulator.issue_token("p-spent"), "p-spent"),
        "clarity_default": (clarity_emulator.issue_token(PROJECT), PROJECT),
    }
    for conn_id, (token, project) in tokens.items():
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id.upper()}",
            clarity_emulator.airflow_conn_json(token, project_id=project),
        )
    for project in (*RUN_TIME_PROJECTS, PROJECT):
        Variable.delete(ledger_key(project))
    # Someone spent p-429's calls with a script, outside Airflow and its ledger.
    clarity_emulator.consume_quota("p-429")
    # Other DAGs spent p-spent's calls through Airflow.
    spent = QuotaLedger("p-spent", caller="marketing_dag/export/scheduled__x/-1")
    for _ in range(10):
        spent.before_call(None)
        spent.after_call(None, "200")
    # No filesystem for s3:// is registered: what a worker without the amazon extra has.
    from airflow.sdk.io import fs, store

    monkeypatch.setattr(store, "_STORE_CACHE", {})
    monkeypatch.setattr(fs, "_register_filesystems", lambda: dict(fs._BUILTIN_SCHEME_TO_FS))
    yield {conn_id: token for conn_id, (token, _) in tokens.items()}
    for project in (*RUN_TIME_PROJECTS, PROJECT):
        Variable.delete(ledger_key(project))


def test_run_time_mistakes_in_one_dag_run(
    run_time_setup: dict[str, str],
    clarity_emulator: ClarityEmulator,
    run_dag: Any,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    a_file = tmp_path / "reports"
    a_file.write_text("a file where the user thought a folder was")
    dag_file = _dag_file(
        tmp_path,
        "clarity_first_day",
        f"""
        ClarityExportOperator(task_id="garbage_token", clarity_conn_id="clarity_garbage")
        ClarityExportOperator(task_id="other_key", clarity_conn_id="clarity_other_key")
        ClarityExportOperator(task_id="expired", clarity_conn_id="clarity_expired")
        ClarityExportOperator(task_id="no_scope", clarity_conn_id="clarity_no_scope")
        ClarityExportOperator(
            task_id="quota_429", clarity_conn_id="clarity_429", on_quota_exhausted="fail"
        )
        ClarityExportOperator(
            task_id="quota_skip", clarity_conn_id="clarity_spent", on_quota_exhausted="skip"
        )
        ClarityExportOperator(
            task_id="s3_no_extra", destination="s3://aws_default@clarity-bucket/os.parquet"
        )
        ClarityExportOperator(
            task_id="unwritable", destination="file://{a_file}/{{{{ ds }}}}/os.parquet"
        )
        """,
    )

    run = run_dag(dag_file, "clarity_first_day", logical_date=datetime.now(UTC))

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {
        "garbage_token": "failed",
        "other_key": "failed",
        "expired": "failed",
        "no_scope": "failed",
        "quota_429": "failed",
        "quota_skip": "skipped",
        "s3_no_extra": "failed",
        "unwritable": "failed",
    }
    out, err = capfd.readouterr()
    log = out + err  # dag.test() prints each task's log, tracebacks included

    # 1. A wrong token: not a JWT at all, or one Clarity did not sign.
    garbage = _raised(log, "ClarityAuthError", "'clarity_garbage'")
    assert garbage.startswith("Clarity answered 401 (unauthorised) for connection ")
    assert "This API token is not a JWT" in garbage
    assert "Generate a new token in Clarity > Settings > Data Export" in garbage
    assert "environment variable AIRFLOW_CONN_CLARITY_GARBAGE" in garbage
    other_key = _raised(log, "ClarityAuthError", "'clarity_other_key'")
    assert "looks like an unexpired Clarity Data Export token (project p-other-key)" in other_key
    assert "Clarity rejected it" in other_key and "revoked" in other_key

    # 2. An expired token says when it expired.
    expired = _raised(log, "ClarityAuthError", "'clarity_expired'")
    assert re.search(r"\(project p-expired\) expired on \d{4}-\d\d-\d\d \d\d:\d\d UTC", expired)
    assert "Generate a new token in Clarity > Settings > Data Export" in expired

    # 3. A token without the Data.Export scope (the emulator's "other project" case).
    no_scope = _raised(log, "ClarityPermissionError", "'clarity_no_scope'")
    assert no_scope.startswith("Clarity answered 403 (forbidden) for connection ")
    assert "project 'p-no-scope'" in no_scope
    assert "another project" in no_scope and "Data.Export scope" in no_scope
    assert "environment variable AIRFLOW_CONN_CLARITY_NO_SCOPE" in no_scope

    # 7. No quota left: a 429 after calls made outside Airflow, and a spent ledger.
    quota_429 = _raised(log, "ClarityQuotaExceededError", "project 'p-429'")
    assert quota_429.startswith("Clarity answered 429")
    assert "calls from outside Airflow count too" in quota_429
    assert "python -m airflow_provider_clarity.quota usage clarity_429" in quota_429
    assert "on_quota_exhausted='fail'; with 'wait' (the default)" in quota_429
    assert "No Clarity call left for project 'p-spent' (the quota ledger is spent)" in log
    assert "marketing_dag/export/scheduled__x/-1: 10 call(s)" in log

    # 8. s3:// without the amazon extra, before any call.
    s3 = _raised(log, "ClarityRequestError", "'s3://")
    assert "needs a filesystem for 's3://'" in s3
    assert "pip install 'airflow-provider-clarity[amazon]'" in s3
    assert "No Clarity call was made" in s3

    # 9. A destination under a file: named, explained, before any call.
    unwritable = _raised(log, "ClarityRequestError", "cannot be written")
    assert unwritable.startswith(f"destination 'file://{a_file}/")
    assert f"'{a_file}' is a file, not a folder" in unwritable
    assert "No Clarity call was made" in unwritable

    # Only three token mistakes and the 429 reached Clarity; nothing else spent a call (an
    # expired token is refused before sending).
    reached = sorted(r.project or "(no project)" for r in clarity_emulator.requests)
    assert reached == ["(no project)", "(no project)", "p-429", "p-no-scope"]
    assert PROJECT not in reached
    assert log.count("Task failed with exception") == 7  # every task's log was captured
    for token in run_time_setup.values():
        assert token not in log


# ------------------------------------------------------------------ parse time


@pytest.mark.parametrize(
    ("arguments", "facts"),
    [
        ('dimensions=["Devise"]', ["no dimension 'Devise'", "did you mean 'Device'?", VALID]),
        ('dimensions="OS,Region"', ["no dimension 'Region'", "did you mean 'Country'?"]),
        (
            "num_of_days=7",
            [
                "num_of_days must be 1, 2 or 3; got 7",
                "keeps no history",
                "run the task daily with num_of_days=1",
            ],
        ),
    ],
    ids=["Devise", "Region", "7-days"],
)
def test_bad_literal_arguments_break_the_dag_at_parse_time(
    airflow_db: Path, tmp_path: Path, arguments: str, facts: list[str]
) -> None:
    from airflow_provider_clarity.version_compat import DagBag

    dag_file = _dag_file(
        tmp_path, "clarity_typo", f'ClarityExportOperator(task_id="export", {arguments})'
    )
    bag = DagBag(dag_folder=str(dag_file))

    assert bag.dags == {}
    (error,) = bag.import_errors.values()
    assert "ClarityRequestError: Task 'export': " in error
    for fact in facts:
        assert fact in error


def test_templated_typo_is_caught_at_run_time_before_any_call(
    conn: str,  # noqa: F811
    clarity_emulator: ClarityEmulator,
) -> None:
    op = ClarityExportOperator(task_id="export", dimensions="{{ params.dims }}")
    op.dimensions = "devise"  # what the template rendered
    with pytest.raises(ClarityRequestError, match="did you mean 'Device'"):
        op.execute(make_context())
    assert clarity_emulator.total_requests() == 0


def test_country_slash_region_is_sent_as_country_and_the_log_says_so(
    conn: str,  # noqa: F811
    clarity_emulator: ClarityEmulator,
    task_log: Any,
) -> None:
    ClarityExportOperator(task_id="export", dimensions=["country/region"]).execute(make_context())
    assert "Sending dimension 'country/region' as 'Country'" in task_log()
    assert clarity_emulator.requests[0].params["dimension1"] == "Country"


# ------------------------------------------------------------------ 6. a missing pool


def test_missing_pool_is_reported_when_parsing_with_known_pools(
    airflow_db: Path, tmp_path: Path
) -> None:
    from airflow.models.dagwarning import DagWarningType

    from airflow_provider_clarity.version_compat import DagBag

    # default_args cannot move the task out of clarity_api; pool= can.
    dag_file = _dag_file(
        tmp_path,
        "clarity_pools",
        """
        ClarityExportOperator(task_id="export", default_args={"pool": "other"})
        ClarityExportOperator(task_id="elsewhere", pool="team_pool")
        """,
    )
    bag = DagBag(dag_folder=str(dag_file), known_pools={"default_pool"})
    (warning,) = bag.dag_warnings
    assert warning.warning_type == DagWarningType.NONEXISTENT_POOL
    assert warning.message == "Dag 'clarity_pools' references non-existent pools: " + repr(
        ["clarity_api", "team_pool"]
    )

    known = {"default_pool", "clarity_api", "team_pool"}
    assert DagBag(dag_folder=str(dag_file), known_pools=known).dag_warnings == set()


def test_test_connection_tells_how_to_create_a_missing_pool(
    airflow_db: Path, clarity_emulator: ClarityEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.models.pool import Pool

    token = clarity_emulator.issue_token(PROJECT)
    monkeypatch.setenv(
        "AIRFLOW_CONN_CLARITY_DEFAULT",
        clarity_emulator.airflow_conn_json(token, project_id=PROJECT),
    )
    existed = Pool.get_pool("clarity_api") is not None
    if existed:
        Pool.delete_pool("clarity_api")
    try:
        ok, message = ClarityHook().test_connection()
        assert ok, message
        assert "the pool 'clarity_api' does not exist" in message
        assert "never run" in message
        assert 'airflow pools set clarity_api 1 "Clarity API calls"' in message

        Pool.create_or_update_pool("clarity_api", 1, "Clarity API calls", include_deferred=False)
        ok, message = ClarityHook().test_connection()
        assert ok and "pool" not in message, message
    finally:
        if not existed:
            Pool.delete_pool("clarity_api")
    assert token not in message
    assert clarity_emulator.total_requests() == 0


# ------------------------------------------------------------------ 7. quota, wait and fail


def test_spent_ledger_wait_logs_when_and_who(
    conn: str,  # noqa: F811
    clarity_emulator: ClarityEmulator,
    ledger_store: MemoryLedgerStore,  # noqa: F811
    task_log: Any,
) -> None:
    ledger = spend_ledger(ledger_store)
    op = ClarityExportOperator(task_id="export", deferrable=False)
    with pytest.raises(AirflowRescheduleException):
        op.execute(make_context())
    log = _one_line(task_log())
    assert "No Clarity call left for project 'demo-project' (the quota ledger is spent)" in log
    assert f"waiting until {ledger.next_reset().isoformat()}, rescheduled" in log
    assert "other_dag/other_task/run/-1: 10 call(s)" in log
    assert clarity_emulator.total_requests() == 0


def test_spent_ledger_fail_says_who_when_and_the_other_modes(
    conn: str,  # noqa: F811
    clarity_emulator: ClarityEmulator,
    ledger_store: MemoryLedgerStore,  # noqa: F811
) -> None:
    spend_ledger(ledger_store)
    op = ClarityExportOperator(task_id="export", on_quota_exhausted="fail")
    with pytest.raises(ClarityQuotaExceededError) as info:
        op.execute(make_context())
    message = str(info.value)
    assert "1 call(s) needed, 0 left" in message
    assert "spent by other_dag/other_task/run/-1 (10)" in message
    assert re.search(r"available again at \d{4}-\d\d-\d\d 00:01:00 UTC", message)
    assert "python -m airflow_provider_clarity.quota usage demo-project" in message
    assert "with 'wait' (the default) it would wait for the reset" in message
    assert info.value.source == "ledger" and info.value.reset_at is not None
    assert clarity_emulator.total_requests() == 0


def test_429_on_a_rolling_window_says_when_a_call_is_expected_back(
    clarity_emulator: ClarityEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = clarity_emulator.issue_token(PROJECT)
    monkeypatch.setenv(
        "AIRFLOW_CONN_CLARITY_DEFAULT",
        clarity_emulator.airflow_conn_json(token, project_id=PROJECT, quota_window="rolling"),
    )
    clarity_emulator.consume_quota(PROJECT)
    with pytest.raises(ClarityQuotaExceededError) as info:
        ClarityHook().get_live_insights()
    message = str(info.value)
    assert "With the connection's rolling window, a call is expected to be free again by" in message
    assert "00:00 UTC" not in message
    assert "set the connection's 'reserve' extra" in message
    assert token not in message


# ------------------------------------------------------------------ 1/2. the token, from the UI


def test_401_names_the_connection_in_the_ui_when_it_is_not_an_env_var(
    clarity_emulator: ClarityEmulator, airflow_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.models.connection import Connection

    # A connection stored in the metadata DB, as one made in the UI is.
    token = clarity_emulator.issue_token(PROJECT, expired=True)
    stored = Connection(
        conn_id="clarity_ui_made",
        conn_type="clarity",
        host=clarity_emulator.base_url,
        password=token,
    )
    monkeypatch.setattr(ClarityHook, "get_connection", classmethod(lambda cls, conn_id: stored))
    with pytest.raises(ClarityAuthError) as info:
        ClarityHook("clarity_ui_made").get_live_insights()
    message = str(info.value)
    assert "API token field of connection 'clarity_ui_made' (Admin > Connections" in message
    assert "expired on" in message
    assert token not in message


# ------------------------------------------------------------------ 9. unwritable destinations


@pytest.mark.parametrize("where", ["under-a-file", "proc", "raw_location"])
def test_unwritable_destination_fails_before_any_call(
    conn: str,  # noqa: F811
    clarity_emulator: ClarityEmulator,
    ledger_store: MemoryLedgerStore,  # noqa: F811
    tmp_path: Path,
    where: str,
) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    kwargs: dict[str, Any]
    # Tests run as root, which ignores permission bits: use places nobody can write instead.
    if where == "under-a-file":
        kwargs = {"destination": f"file://{a_file}/os.parquet"}
        facts = [f"destination 'file://{a_file}/os.parquet' cannot be written", "is a file"]
    elif where == "proc":
        kwargs = {"destination": "/proc/clarity/os.parquet"}
        facts = ["destination '/proc/clarity/os.parquet' cannot be written", "'/proc/clarity'"]
    else:
        kwargs = {
            "destination": str(tmp_path / "out" / "os.parquet"),
            "raw_location": f"file://{a_file}/raw/",
        }
        facts = [f"raw_location 'file://{a_file}/raw/", "is a file, not a folder"]
    op = ClarityExportOperator(task_id="export", **kwargs)
    with pytest.raises(ClarityRequestError) as info:
        op.execute(make_context())
    message = str(info.value)
    for fact in facts:
        assert fact in message
    assert "the task's user ('" in message and "No Clarity call was made" in message
    assert clarity_emulator.total_requests() == 0
    assert ledger_store.data is None  # the ledger was not even read for a call
