"""Mistakes ClarityExportOperator refuses before a call: at parse time, or before sending.

Each test counts what a user would pay: requests the Clarity emulator (a real HTTP server on
127.0.0.1) received, and calls the quota ledger charged. A refused mistake costs neither.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_clarity.exceptions import ClarityRequestError
from airflow_provider_clarity.operators.export import ClarityExportOperator
from airflow_provider_clarity.quota import MemoryLedgerStore
from airflow_provider_clarity.testing.emulator import ClarityEmulator
from airflow_provider_clarity.utils import storage
from tests.operators.fixtures import (
    FakeTaskStateStore,
    assert_no_token,
    charged,
    make_context,
)


def assert_nothing_spent(emulator: ClarityEmulator, store: MemoryLedgerStore) -> None:
    assert emulator.total_requests() == 0
    assert charged(store) == 0


# ------------------------------------------------------------------ 1. literal arguments


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"num_of_days": 1.5}, "num_of_days must be 1, 2 or 3; got 1.5"),
        ({"num_of_days": 1.0}, "num_of_days must be 1, 2 or 3; got 1.0"),
        ({"num_of_days": True}, "num_of_days must be 1, 2 or 3; got True"),
        ({"num_of_days": "¹"}, "num_of_days must be 1, 2 or 3; got '¹'"),
        ({"num_of_days": [1]}, "num_of_days must be 1, 2 or 3; got [1]"),
        ({"num_of_days": None}, "num_of_days must be 1, 2 or 3; got None"),
        ({"dimensions": {"OS": 1}}, "got dict"),
        ({"dimensions": [None]}, "dimension names must be strings; got None"),
        ({"dimensions": ["OS", None]}, "dimension names must be strings; got None"),
        ({"dimensions": ("OS", 1)}, "dimension names must be strings; got 1"),
        ({"dimensions": [b"OS"]}, "dimension names must be strings; got b'OS'"),
        ({"dimensions": b"OS"}, "got bytes"),
        ({"dimensions": {"OS", "Device"}}, "a set has no order"),
        ({"dimensions": True}, "got bool"),
        ({"dimensions": 3}, "got int"),
        ({"dimensions": [["OS"]]}, "dimension names must be strings; got ['OS']"),
        ({"dimensions": ""}, "names no dimension"),
        ({"dimensions": "   "}, "names no dimension"),
        ({"dimensions": " , "}, "names no dimension"),
    ],
)
def test_bad_literal_is_refused_when_the_dag_file_is_parsed(kwargs: Any, says: str) -> None:
    with pytest.raises(ClarityRequestError) as info:
        ClarityExportOperator(task_id="by_os", **kwargs)

    assert str(info.value).startswith("Task 'by_os': ")
    assert says in str(info.value)


def test_empty_dimensions_string_says_what_to_write_instead() -> None:
    with pytest.raises(ClarityRequestError) as info:
        ClarityExportOperator(task_id="t", dimensions="")

    text = str(info.value)
    assert "leave dimensions out" in text and "dimensions=[]" in text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dimensions": "{{ params.dims }}"},
        {"dimensions": ["{{ params.first }}", "Device"]},
        {"dimensions": "{% if true %}OS{% endif %}"},
        {"num_of_days": "{{ params.days }}"},
        {"dimensions": []},
        {"dimensions": ()},
        {"dimensions": "[]"},
        {"dimensions": None},
    ],
)
def test_templates_and_the_no_dimension_forms_pass_at_parse_time(kwargs: Any) -> None:
    ClarityExportOperator(task_id="t", **kwargs)


def test_xcom_arg_dimensions_are_checked_at_run_time_not_parse_time() -> None:
    from airflow.sdk import DAG, task

    with DAG(dag_id="xcom_dims", schedule=None):

        @task
        def pick() -> list[str]:
            return ["OS"]

        ClarityExportOperator(task_id="t", dimensions=pick())


@pytest.mark.parametrize(
    ("rendered", "says"),
    [
        ({"dimensions": ""}, "names no dimension"),
        ({"dimensions": "  "}, "names no dimension"),
        ({"dimensions": [None]}, "dimension names must be strings"),
        ({"num_of_days": "¹"}, "num_of_days must be 1, 2 or 3; got '¹'"),
        ({"num_of_days": "1.5"}, "num_of_days must be 1, 2 or 3; got '1.5'"),
    ],
)
def test_bad_rendered_value_is_refused_before_any_call(
    conn: str,
    clarity_emulator: ClarityEmulator,
    ledger_store: MemoryLedgerStore,
    rendered: dict[str, Any],
    says: str,
) -> None:
    op = ClarityExportOperator(task_id="t", dimensions="{{ d }}", num_of_days="{{ n }}")
    op.num_of_days = rendered.get("num_of_days", 1)
    op.dimensions = rendered.get("dimensions", [])

    with pytest.raises(ClarityRequestError, match=says):
        op.execute(make_context())

    assert_nothing_spent(clarity_emulator, ledger_store)


def test_rendered_empty_list_still_means_the_no_dimension_snapshot(
    conn: str,
    clarity_emulator: ClarityEmulator,
) -> None:
    op = ClarityExportOperator(task_id="t", dimensions="{{ d }}")
    op.dimensions = "[]"

    op.execute(make_context())

    [request] = clarity_emulator.requests
    assert request.params == {"numOfDays": "1"}


# ------------------------------------------------------------------ 2. destination shapes


def test_destination_that_is_an_existing_folder_is_refused_before_the_call(
    conn: str,
    clarity_emulator: ClarityEmulator,
    ledger_store: MemoryLedgerStore,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "os.parquet"
    folder.mkdir()
    op = ClarityExportOperator(task_id="t", destination=folder.as_uri())

    with pytest.raises(ClarityRequestError) as info:
        op.execute(make_context())

    text = str(info.value)
    assert (
        "is a folder" in text
        and "name a file inside it" in text
        and "No Clarity call was made" in text
    )
    assert_nothing_spent(clarity_emulator, ledger_store)


@pytest.mark.parametrize("where", ["destination", "raw_location"])
def test_a_json_raw_location_or_destination_that_is_a_folder_is_refused(
    conn: str,
    clarity_emulator: ClarityEmulator,
    ledger_store: MemoryLedgerStore,
    tmp_path: Path,
    where: str,
) -> None:
    (tmp_path / "kept.json").mkdir()
    kwargs = {where: (tmp_path / "kept.json").as_uri()}
    if where == "raw_location":
        kwargs["destination"] = (tmp_path / "os.parquet").as_uri()

    with pytest.raises(ClarityRequestError, match=f"{where} .* is a folder"):
        ClarityExportOperator(task_id="t", output_format="json", **kwargs).execute(make_context())

    assert_nothing_spent(clarity_emulator, ledger_store)


def test_destination_ending_in_a_slash_is_refused(
    conn: str,
    clarity_emulator: ClarityEmulator,
    ledger_store: MemoryLedgerStore,
    tmp_path: Path,
) -> None:
    with pytest.raises(ClarityRequestError, match="names a folder or bucket"):
        ClarityExportOperator(task_id="t", destination=f"{tmp_path.as_uri()}/out/")

    for rendered in (f"{tmp_path.as_uri()}/out/", f"{tmp_path.as_uri()}/out/.", "file:///"):
        op = ClarityExportOperator(task_id="t", destination="{{ d }}")
        op.destination = rendered
        with pytest.raises(ClarityRequestError, match="names a folder or bucket"):
            op.execute(make_context())

    assert_nothing_spent(clarity_emulator, ledger_store)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("raw_under", ["same", "inside"])
def test_raw_location_that_collides_with_the_destination_is_refused(
    conn: str,
    clarity_emulator: ClarityEmulator,
    ledger_store: MemoryLedgerStore,
    tmp_path: Path,
    raw_under: str,
) -> None:
    destination = tmp_path / "os.json"
    raw = destination if raw_under == "same" else destination / "raw"
    op = ClarityExportOperator(
        task_id="t",
        destination=destination.as_uri(),
        output_format="json",
        raw_location=raw.as_uri(),
    )

    with pytest.raises(ClarityRequestError, match="raw_location"):
        op.execute(make_context())

    assert_nothing_spent(clarity_emulator, ledger_store)
    assert not destination.exists()


def test_raw_location_folder_with_a_trailing_slash_still_works(
    conn: str,
    clarity_emulator: ClarityEmulator,
    tmp_path: Path,
) -> None:
    op = ClarityExportOperator(task_id="t", raw_location=f"{tmp_path.as_uri()}/raw/")

    op.execute(make_context())

    assert (tmp_path / "raw/clarity_test/scheduled__test/export.raw.json").is_file()
    assert clarity_emulator.total_requests() == 1


# ------------------------------------------------------------------ 4. file modes


@pytest.fixture
def umask() -> Iterator[Any]:
    """Set the process umask for one test, then restore it."""
    previous = os.umask(0o077)
    os.umask(previous)

    def set_umask(value: int) -> None:
        os.umask(value)

    yield set_umask
    os.umask(previous)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_written_files_follow_the_umask(
    conn: str,
    clarity_emulator: ClarityEmulator,
    clarity_token: str,
    tmp_path: Path,
    umask: Any,
    mask: int,
    mode: int,
) -> None:
    umask(mask)
    destination = tmp_path / "dt" / "os.parquet"
    raw_folder = tmp_path / "raw"

    ClarityExportOperator(task_id="t", dimensions=["OS"], destination=destination.as_uri()).execute(
        make_context()
    )
    ClarityExportOperator(task_id="t", dimensions=["OS"], raw_location=raw_folder.as_uri()).execute(
        make_context()
    )

    raw_beside = tmp_path / "dt" / "os.raw.json"
    raw_kept = raw_folder / "clarity_test/scheduled__test/export.raw.json"
    for path in (destination, raw_beside, raw_kept):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path
    assert sorted(p.name for p in (tmp_path / "dt").iterdir()) == ["os.parquet", "os.raw.json"]
    assert_no_token(clarity_token, raw_beside.read_text(), raw_kept.read_text())


def test_umask_is_read_without_changing_it(umask: Any) -> None:
    umask(0o027)

    assert storage.current_umask() == 0o027
    assert os.umask(0o027) == 0o027


def test_umask_fallback_without_proc(umask: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    umask(0o007)
    monkeypatch.setattr(storage, "_PROC_STATUS", "/nonexistent/status")

    assert storage.current_umask() == 0o007
    assert os.umask(0o007) == 0o007


# ------------------------------------------------------------------ token hygiene


def test_refusals_carry_no_token(
    conn: str,
    clarity_emulator: ClarityEmulator,
    clarity_token: str,
    tmp_path: Path,
    task_log: Any,
) -> None:
    (tmp_path / "os.parquet").mkdir()
    errors = []
    for kwargs in (
        {"destination": (tmp_path / "os.parquet").as_uri()},
        {"destination": "{{ d }}"},
    ):
        op = ClarityExportOperator(task_id="t", **kwargs)
        if kwargs["destination"] == "{{ d }}":
            op.destination = f"{tmp_path.as_uri()}/x/"
        with pytest.raises(ClarityRequestError) as info:
            op.execute(make_context(state_store=FakeTaskStateStore()))
        errors.append(f"{info.value!s} {info.value!r}")
    assert_no_token(clarity_token, task_log(), json.dumps(errors))
