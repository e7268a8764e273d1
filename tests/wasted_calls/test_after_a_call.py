"""Not one wasted call after a request left: redirects, Airflow retries, outages, timeouts."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_clarity.exceptions import (
    ClarityDegradedError,
    ClarityRequestError,
    ClarityResponseError,
    ClarityServerError,
)
from airflow_provider_clarity.hooks.clarity import ClarityHook
from airflow_provider_clarity.operators.export import ClarityExportOperator
from airflow_provider_clarity.quota import MemoryLedgerStore, QuotaLedger
from airflow_provider_clarity.request import ClarityRequest
from airflow_provider_clarity.testing.emulator import ClarityEmulator
from airflow_provider_clarity.version_compat import AirflowRescheduleException
from tests.operators.fixtures import FakeTaskStateStore, make_context
from tests.wasted_calls.fixtures import (
    CONN_ID,
    _dag,
    _with_store,
    assert_no_token,
    call,
    everything_about,
)

# ------------------------------------------------------------------ redirects and gateways


@pytest.mark.parametrize("loop", [False, True], ids=["other-origin", "loop"])
def test_a_redirect_is_not_followed_and_says_where_it_pointed(
    loop: bool,
    clarity_emulator: ClarityEmulator,
    token: str,
    connect: Callable[..., None],
    store: MemoryLedgerStore,
) -> None:
    target = None if loop else "https://login.example.invalid/sso?next=%2Fexport&ticket=abc"
    clarity_emulator.inject_fault("redirect", permanent=True, location=target)
    connect(clarity_emulator.base_url, token)
    result, ledger = call(store)
    assert isinstance(result, ClarityRequestError)
    pointed = target.split("?")[0] if target else clarity_emulator.endpoint_url
    assert f"a redirect to {pointed})" in str(result)
    assert "ticket" not in str(result), "the query (which may hold secrets) is not shown"
    assert "not followed" in str(result)
    assert len(clarity_emulator.requests) == 1, "31 requests for a loop before"
    assert len(ledger.entries()) == 1


def test_a_gateway_echoing_the_request_leaks_no_piece_of_the_token(
    clarity_emulator: ClarityEmulator,
    token: str,
    connect: Callable[..., None],
    store: MemoryLedgerStore,
    task_log: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clarity_emulator.inject_fault("echo_gateway", count=1)
    connect(clarity_emulator.base_url, token)
    monkeypatch.setattr(QuotaLedger, "for_hook", _with_store(store))
    monkeypatch.setattr(
        ClarityExportOperator, "hook", ClarityHook(CONN_ID, max_retries=0, retry_backoff=0.01)
    )
    state = FakeTaskStateStore()
    op = ClarityExportOperator(task_id="export", clarity_conn_id=CONN_ID, dimensions=["OS"])
    with pytest.raises(ClarityServerError) as info:
        op.execute(make_context(state_store=state))
    assert "HTTP 502" in str(info.value)
    kept = json.dumps(state.values)
    assert '"status": 502' in kept and "Bad Gateway" in kept
    assert "Authorization: Bearer [token removed]" in kept, "the echo is kept, scrubbed"
    assert_no_token(token, everything_about(info.value), kept, task_log())


def test_errors_retrying_cannot_fix_end_the_task_without_spending_airflow_retries(
    retry_setup: dict[str, str],
    airflow_db: Path,
    clarity_emulator: ClarityEmulator,
    run_dag: Any,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from airflow.models.variable import Variable

    from airflow_provider_clarity.quota import ledger_key

    dag_file = _dag(
        tmp_path,
        "clarity_no_retry",
        f"""
        ClarityExportOperator(task_id="t401", clarity_conn_id="retry_401")
        ClarityExportOperator(task_id="thtml", clarity_conn_id="retry_html",
                              destination="file://{tmp_path}/out/html.parquet")
        """,
    )
    # The html task's host answers with a sign-in page (a proxy or captive portal).
    clarity_emulator.inject_fault("html_200", count=1)
    run = run_dag(dag_file, "clarity_no_retry")
    out, err = capfd.readouterr()
    tis = {ti.task_id: ti for ti in run.get_task_instances()}
    assert {t: ti.state for t, ti in tis.items()} == {"t401": "failed", "thtml": "failed"}
    assert {t: ti.try_number for t, ti in tis.items()} == {"t401": 1, "thtml": 1}
    by_project: dict[str | None, int] = {}
    for r in clarity_emulator.requests:
        by_project[r.project] = by_project.get(r.project, 0) + 1
    assert by_project.get(None, 0) == 1, "one 401, not three"
    assert by_project.get("p-html", 0) == 1, "one unusable 200, not three"
    # The unusable answer is kept beside the destination; a re-run reads it again for free.
    kept = json.loads((tmp_path / "out" / "html.raw.json").read_text())
    assert kept["status"] == 200 and "Sign in" in kept["body"] and kept["response"] is None
    ledger = json.loads(Variable.get(ledger_key("p-401")))
    assert [c["outcome"] for c in ledger["calls"]] == ["401"]
    # Nor in the metadata DB (task instances, XCom, logs of the run, the ledger Variable).
    database = "".join(
        path.read_bytes().decode("latin-1") for path in sorted(airflow_db.glob("airflow.db*"))
    )
    assert "clarity_no_retry" in database, "the run is in this DB"
    for secret in retry_setup.values():
        assert_no_token(secret, out + err, database)


def test_an_unusable_answer_is_kept_and_re_read_for_free(
    clarity_connection: str,
    clarity_emulator: ClarityEmulator,
    tmp_path: Path,
    store: MemoryLedgerStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(QuotaLedger, "for_hook", _with_store(store))
    clarity_emulator.inject_fault("html_200", count=1)
    destination = f"file://{tmp_path}/os.parquet"
    for _ in range(2):
        with pytest.raises(ClarityResponseError, match="force_refresh=True spends a new one"):
            ClarityExportOperator(task_id="export", destination=destination).execute(make_context())
    assert len(clarity_emulator.requests) == 1, "the second run re-read the kept answer"
    result = ClarityExportOperator(
        task_id="export", destination=destination, force_refresh=True
    ).execute(make_context())
    assert result["rows"] > 0
    assert len(clarity_emulator.requests) == 2


# ------------------------------------------------------------------ outages


@pytest.mark.clarity_emulator(count_failed_calls=True)
def test_an_outage_marks_the_project_degraded_and_one_probe_ends_it(
    clarity_emulator: ClarityEmulator,
    token: str,
    connect: Callable[..., None],
    store: MemoryLedgerStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clarity_emulator.inject_fault("server_error", permanent=True)
    connect(clarity_emulator.base_url, token, degraded_cooldown_seconds=2)
    monkeypatch.setattr(QuotaLedger, "for_hook", _with_store(store))
    monkeypatch.setattr(
        ClarityExportOperator, "hook", ClarityHook(CONN_ID, max_retries=2, retry_backoff=0.01)
    )

    def export() -> Any:
        op = ClarityExportOperator(task_id="export", clarity_conn_id=CONN_ID, deferrable=False)
        return op.execute(make_context())

    with pytest.raises(ClarityServerError):
        export()
    assert len(clarity_emulator.requests) == 3
    # Another task in the cool-down waits for its end instead of spending three attempts.
    with pytest.raises(AirflowRescheduleException) as waited:
        export()
    assert len(clarity_emulator.requests) == 3
    ledger = QuotaLedger.for_hook(ClarityHook(CONN_ID), store=store)
    assert ledger.status().degraded
    assert waited.value.reschedule_date >= ledger.status().degraded_until
    with pytest.raises(ClarityDegradedError, match="degraded_cooldown_seconds"):
        ledger.check()
    # After the cool-down, one probe: it fails, so the next cool-down starts at once.
    time.sleep(2.1)
    with pytest.raises(AirflowRescheduleException):
        export()
    assert len(clarity_emulator.requests) == 4, "the probe was one attempt, not three"
    # Clarity is back: the next probe succeeds and the project is healthy again.
    clarity_emulator.clear_faults()
    time.sleep(2.1)
    assert export()  # rows to XCom
    assert len(clarity_emulator.requests) == 5
    assert not QuotaLedger.for_hook(ClarityHook(CONN_ID), store=store).status().degraded


# ------------------------------------------------------------------ timeouts


def test_the_read_timeout_comes_from_the_connection_or_hook_params(
    clarity_emulator: ClarityEmulator,
    token: str,
    connect: Callable[..., None],
    store: MemoryLedgerStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connect(clarity_emulator.base_url, token, timeout="0.5")
    assert ClarityHook(CONN_ID).timeout == 0.5
    assert ClarityExportOperator(task_id="t", clarity_conn_id=CONN_ID).hook.timeout == 0.5
    op = ClarityExportOperator(
        task_id="t", clarity_conn_id=CONN_ID, hook_params={"timeout": 7, "max_retries": 0}
    )
    assert (op.hook.timeout, op.hook.max_retries) == (7.0, 0)
    clarity_emulator.inject_fault("slow", count=1, delay=3)
    result, ledger = call(store, max_retries=0)
    assert isinstance(result, ClarityServerError) and "no answer within 0.5 s" in str(result)
    assert [c["outcome"] for c in ledger.entries()] == ["timeout"]
    connect(clarity_emulator.base_url, token, timeout="soon")
    with pytest.raises(ClarityRequestError, match="extra 'timeout' must be a number"):
        ClarityHook(CONN_ID).check_offline()


def test_request_objects_stay_valid(token: str) -> None:
    assert ClarityRequest.build("2", "os").params() == {"numOfDays": "2", "dimension1": "OS"}
