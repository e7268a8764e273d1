"""``plan``: the day's Clarity calls per project, read from real DAG folders with a DagBag.

Connections are real Airflow connections (``AIRFLOW_CONN_*``) to the emulator, which must
receive no request at all: the planner works offline.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from airflow_provider_clarity.plan import check
from airflow_provider_clarity.testing import assert_fits_budget
from airflow_provider_clarity.testing.emulator import ClarityEmulator
from airflow_provider_clarity.version_compat import HAS_PROVIDER_CLI

PROJECT = "plan-project"
SINGLES = ["Browser", "Device", "Country", "OS", "Source", "Medium", "Campaign", "Channel"]
PAIRS = [("Device", "OS"), ("Browser", "Country"), ("Source", "Medium"), ("Campaign", "Channel")]

HEADER = """
from datetime import timedelta

from airflow.sdk import DAG, Asset

from airflow_provider_clarity.operators.derive import ClarityDeriveOperator
from airflow_provider_clarity.operators.export import ClarityExportOperator
from airflow_provider_clarity.version_compat import HAS_PROVIDER_CLI
"""


@pytest.fixture
def token(clarity_emulator: ClarityEmulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """``clarity_default`` (reserve 2) and ``clarity_other`` point at the emulator."""
    issued = clarity_emulator.issue_token(PROJECT)
    monkeypatch.setenv(
        "AIRFLOW_CONN_CLARITY_DEFAULT",
        clarity_emulator.airflow_conn_json(issued, project_id=PROJECT, reserve=2),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_CLARITY_OTHER",
        clarity_emulator.airflow_conn_json(clarity_emulator.issue_token("other"), "other"),
    )
    return issued


def dags_folder(tmp_path: Path, name: str, body: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / f"{name}.py").write_text(HEADER + textwrap.dedent(body))
    return folder


def assert_no_token(token: str, text: str) -> None:
    pieces = {token[i : i + 24] for i in range(len(token) - 23)}
    assert not any(piece in text for piece in pieces)


def over_budget(tmp_path: Path) -> Path:
    """The 8 session dimensions alone plus 4 pairs, each its own call: 12 of 8."""
    return dags_folder(
        tmp_path,
        "over",
        f"""
        with DAG("singles", schedule="@daily", catchup=False):
            for d in {SINGLES!r}:
                ClarityExportOperator(task_id=d.lower(), dimensions=[d])
        with DAG("pairs", schedule="0 6 * * *", catchup=False):
            for a, b in {PAIRS!r}:
                ClarityExportOperator(task_id=f"{{a}}_{{b}}".lower(), dimensions=[a, b])
        with DAG("elsewhere", schedule="@daily", catchup=False):
            ClarityExportOperator(task_id="os", clarity_conn_id="clarity_other", dimensions="OS")
        """,
    )


def test_over_budget_folder_fails_and_suggests_four_calls(
    token: str, clarity_emulator: ClarityEmulator, tmp_path: Path
) -> None:
    status, report = check(over_budget(tmp_path))

    assert status == 1, report
    assert "Clarity project 'plan-project': limit 10 - reserve 2 = 8 calls" in report
    assert "12 scheduled - 0 absorbed by shared snapshots = 12 of 8: OVER BUDGET by 4" in report
    assert "derivable: singles.device (Device) from pairs.device_os's Device,OS" in report
    assert "suggested plan: 4 call(s) a day instead of 12" in report
    assert "1 x Device,OS  -> Device; OS; Device,OS" in report
    assert "Clarity project 'other'" in report and "= 1 of 10: fits" in report
    with pytest.raises(AssertionError, match="OVER BUDGET"):
        assert_fits_budget(tmp_path / "over")
    assert_no_token(token, report)
    assert clarity_emulator.total_requests() == 0


def test_fitting_folder_passes_counting_shared_snapshots_and_schedules(
    token: str, clarity_emulator: ClarityEmulator, tmp_path: Path
) -> None:
    folder = dags_folder(
        tmp_path,
        "fit",
        f"""
        for team in ("a", "b", "c"):
            with DAG(f"team_{{team}}", schedule="@daily", catchup=False):
                ClarityExportOperator(
                    task_id="device",
                    dimensions=["Device"],
                    destination=f"file://{tmp_path}/{{team}}/{{{{{{{{ ds }}}}}}}}/device.parquet",
                )
        with DAG("pairs", schedule=timedelta(hours=8), catchup=False):
            pairs = ClarityExportOperator(
                task_id="device_os", dimensions=["Device", "OS"], raw_location="s3://b/raw/"
            )
            pairs >> ClarityDeriveOperator(
                task_id="os", source="s3://b/raw/x.raw.json", outputs={{"OS": "s3://b/os.csv"}},
                output_format="csv",
            )
        with DAG("manual", schedule=None):
            ClarityExportOperator(task_id="url", dimensions=["URL"])
            ClarityExportOperator.partial(task_id="mapped").expand(dimensions=[["OS"], ["Browser"]])
        with DAG("on_asset", schedule=[Asset("s3://b/ready")]):
            ClarityExportOperator(task_id="browser", dimensions=["Browser"])
        """,
    )

    status, report = check(folder)

    assert status == 0, report
    # 3 @daily Device exports, same request at 00:00, files on one host: 1 call.
    assert "team_b.device" in report and "1 run(s) reuse team_a.device's shared" in report
    assert "6 scheduled - 2 absorbed by shared snapshots = 4 of 8: fits" in report
    assert "manual.url" in report and "None (only when triggered)" in report
    unknown = "unknown (asset-triggered, continuous or mapped): manual.mapped, on_asset.browser;"
    assert unknown in report
    assert "derive task pairs.os: 0 calls" in report
    assert "suggested plan: 3 call(s) a day instead of 4" in report
    assert assert_fits_budget(folder) == report
    assert_no_token(token, report)
    assert clarity_emulator.total_requests() == 0


def test_broken_dag_file_exits_2(token: str, tmp_path: Path) -> None:
    folder = dags_folder(tmp_path, "broken", "raise RuntimeError('oops')\n")

    status, report = check(folder)

    assert status == 2 and "oops" in report


def test_airflow_clarity_plan_and_python_m_exit_codes(
    token: str, clarity_emulator: ClarityEmulator, tmp_path: Path, airflow_db: Path
) -> None:
    # `airflow clarity plan` where the provider CLI exists (3.2+), the python -m form elsewhere.
    plan = (
        [str(Path(sys.executable).parent / "airflow"), "clarity", "plan"]
        if HAS_PROVIDER_CLI
        else [sys.executable, "-m", "airflow_provider_clarity.plan"]
    )
    over = subprocess.run(
        [*plan, str(over_budget(tmp_path))],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        check=False,
    )
    fit = dags_folder(tmp_path, "one", 'with DAG("one", schedule="@daily"):\n    '
                      'ClarityExportOperator(task_id="os", dimensions="OS")\n')  # fmt: skip
    ok = subprocess.run(
        [sys.executable, "-m", "airflow_provider_clarity.plan", str(fit)],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        check=False,
    )

    assert over.returncode == 1, over.stderr[-2000:]
    assert "OVER BUDGET by 4" in over.stdout
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "= 1 of 8: fits" in ok.stdout
    assert_no_token(token, over.stdout + over.stderr + ok.stdout + ok.stderr)
    assert clarity_emulator.total_requests() == 0


def test_each_suggested_call_says_which_tasks_and_runs_it_replaces(
    token: str, clarity_emulator: ClarityEmulator, tmp_path: Path
) -> None:
    folder = dags_folder(
        tmp_path,
        "why",
        """
        with DAG("morning", schedule="5 0 * * *", catchup=False):
            ClarityExportOperator(task_id="os", dimensions=["OS"])
            ClarityExportOperator(task_id="device", dimensions=["Device"])
        with DAG("later", schedule="35 0 * * *", catchup=False):
            ClarityExportOperator(task_id="os", dimensions=["OS"])
        with DAG("twice", schedule="0 6,18 * * *", catchup=False):
            ClarityExportOperator(task_id="device", dimensions=["Device"])
        """,
    )

    status, report = check(folder)

    assert status == 0, report
    assert "suggested plan: 3 call(s) a day instead of 5" in report
    assert "    3 x Device,OS  -> Device; OS\n" in report
    # Why 3: Device is asked 1 + 2 times a day, OS 1 + 1 (state store: nothing shared).
    assert (
        "      why 3: the most calls a day of the tables it serves: "
        "Device 3 = morning.device (1 a day, 5 0 * * *) + twice.device (2 a day, 0 6,18 * * *); "
        "OS 2 = later.os (1 a day, 35 0 * * *) + morning.os (1 a day, 5 0 * * *)\n"
    ) in report
    assert (
        "      fit assumed: a pair of session dimensions; no kept answer measured Device, OS"
        in (report)
    )
    assert clarity_emulator.total_requests() == 0


def keep_answers(
    emulator: ClarityEmulator, folder: Path, dimensions: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Yesterday's answers, one per single dimension, kept as raw files and listed in the
    project's shared-snapshot index (its Variable, from the environment), as exports leave
    them. The emulator builds them without HTTP, so it still receives no request."""
    from datetime import UTC, datetime

    from airflow.sdk import ObjectStoragePath

    from airflow_provider_clarity.quota import MemoryLedgerStore
    from airflow_provider_clarity.request import ClarityRequest
    from airflow_provider_clarity.snapshots.index import SharedSnapshot, SnapshotIndex, index_key
    from airflow_provider_clarity.snapshots.raw import PathSnapshotStore, RawSnapshot

    folder.mkdir()
    index = SnapshotIndex(PROJECT, store=MemoryLedgerStore())
    now = datetime.now(UTC)
    for dim in dimensions:
        request = ClarityRequest.build(1, [dim]).params()
        location = f"file://{folder}/{dim.lower()}.raw.json"
        PathSnapshotStore(ObjectStoragePath(location)).save(
            RawSnapshot(
                request, PROJECT, now, emulator.payload(PROJECT, dimensions=(dim,)), host="h"
            )
        )
        index.register(SharedSnapshot(request, now, location, "h", "worker", f"day1/{dim}"))
    document = index.store.load()
    monkeypatch.setenv(f"AIRFLOW_VAR_{index_key(PROJECT).upper()}", json.dumps(document))


def test_triples_are_packed_where_kept_answers_measured_their_rows(
    token: str, clarity_emulator: ClarityEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = dags_folder(
        tmp_path,
        "singles",
        f"""
        with DAG("singles", schedule="@daily", catchup=False):
            for d in {SINGLES!r}:
                ClarityExportOperator(task_id=d.lower(), dimensions=[d])
        """,
    )

    _, unmeasured = check(folder)
    keep_answers(clarity_emulator, tmp_path / "kept", SINGLES[:-1], monkeypatch)  # no Channel
    _, measured = check(folder)

    # Nothing measured: pairs only, each fit assumed, and the report says what would help.
    assert "suggested plan: 4 call(s) a day instead of 8" in unmeasured, unmeasured
    assert unmeasured.count("fit assumed: a pair of session dimensions") == 4
    assert "fit measured" not in unmeasured
    assert "row counts: none measured" in unmeasured
    # 7 singles measured: two triples under 800 rows, Country (31 values) with the one
    # dimension no answer measured, Channel, in an assumed pair.
    assert "suggested plan: 3 call(s) a day instead of 8" in measured, measured
    assert "row counts: measured from 7 kept answer(s)" in measured
    calls = re.findall(r"^    1 x (\S+)  -> (.+)$", measured, re.MULTILINE)
    assert sorted(d for dims, _ in calls for d in dims.split(",")) == sorted(SINGLES)
    assert sorted(len(dims.split(",")) for dims, _ in calls) == [2, 3, 3]
    bounds = [int(n) for n in re.findall(r"fit measured: at most (\d+) rows a block", measured)]
    assert len(bounds) == 2 and all(n <= 800 for n in bounds), measured
    assert ("Country,Channel", "Channel; Country") in calls
    assert "fit assumed: a pair of session dimensions; no kept answer measured Channel" in measured
    assert clarity_emulator.total_requests() == 0


def test_a_multi_slot_pool_the_ledger_relies_on_fails_the_plan_first(
    token: str, airflow_db: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Tasks on several hosts, no shared lock dir, a 3-slot pool: the budget cannot hold."""
    from airflow.models.pool import Pool

    folder = dags_folder(
        tmp_path,
        "one",
        """
        with DAG("one", schedule="@daily", catchup=False):
            ClarityExportOperator(task_id="os", dimensions=["OS"])
        """,
    )
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    monkeypatch.delenv("AIRFLOW__CLARITY__LEDGER_LOCK_DIR", raising=False)
    Pool.create_or_update_pool("clarity_api", 3, "Clarity API calls", False)
    try:
        status, report = check(folder)
        assert status == 1
        assert report.startswith("Fault: the pool 'clarity_api' has 3 slots")
        assert "= 1 of 8: fits" in report  # the budget itself fits
        monkeypatch.setenv("AIRFLOW__CLARITY__LEDGER_LOCK_DIR", str(tmp_path / "locks"))
        status, report = check(folder)
        assert status == 0 and "Fault" not in report
    finally:
        Pool.delete_pool("clarity_api")
