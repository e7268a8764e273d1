"""The output schema is a contract: ``airflow_provider_clarity/schema/v1.json`` pins every
column and type of every output format, and this test fails on any change to them.

A deliberate change edits the file, bumps ``normalize.SCHEMA_VERSION`` (a new major
version of the schema, a new file) and says so in ``CHANGELOG.md``.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

import pyarrow.parquet as pq
import pytest

from airflow_provider_clarity import normalize
from airflow_provider_clarity.outputs.formats import PARQUET_VERSION_KEY, encode
from airflow_provider_clarity.testing.emulator import ClarityEmulator
from tests.conftest import REPO_ROOT

CONTRACT = REPO_ROOT / "airflow_provider_clarity" / "schema" / f"v{normalize.SCHEMA_VERSION}.json"
AT = datetime(2026, 11, 30, 0, 5, tzinfo=UTC)
JSON_TYPES = {str: "string", int: "integer", float: "number", type(None): "null"}


def payloads() -> list[tuple[str, tuple[str, ...], list[dict[str, Any]]]]:
    """Real answers: web and mobile-app, snapshot and breakdowns, and an empty day."""
    emulator = ClarityEmulator(clock=lambda: AT, seed=3)
    emulator.configure_project("app", mobile_app=True)
    emulator.configure_project("quiet", traffic="empty")
    cases = []
    for project in ("web", "app", "quiet"):
        for dimensions in ((), ("Device",), ("Country", "OS"), ("URL",)):
            cases.append((project, dimensions, emulator.payload(project, dimensions=dimensions)))
    return cases


CASES = payloads()


def contract() -> dict[str, Any]:
    return json.loads(CONTRACT.read_text())


def _encode(case: tuple[str, tuple[str, ...], list[dict[str, Any]]], fmt: str) -> bytes:
    project, dimensions, payload = case
    return encode(
        payload,
        fmt,
        request=f"numOfDays=1 dimensions={','.join(dimensions) or 'none'}",
        exported_at=AT,
        num_of_days=1,
        project_id=project,
        dimensions=dimensions,
    )


def test_the_contract_is_this_schema_version() -> None:
    assert contract()["schema_version"] == normalize.SCHEMA_VERSION
    assert contract()["unknown_fields"] == "string"


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{','.join(c[1]) or 'none'}")
def test_parquet_columns_and_types_are_the_contract(case: Any) -> None:
    table = pq.read_table(io.BytesIO(_encode(case, "parquet")))
    found = [[field.name, str(field.type)] for field in table.schema]
    assert found == contract()["parquet"]
    assert table.schema.metadata[PARQUET_VERSION_KEY.encode()] == normalize.SCHEMA_VERSION.encode()


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{','.join(c[1]) or 'none'}")
def test_csv_header_is_the_contract(case: Any) -> None:
    header = next(csv.reader(io.StringIO(_encode(case, "csv").decode("utf-8"))))
    assert header == [name for name, _ in contract()["csv"]]


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{','.join(c[1]) or 'none'}")
def test_json_keys_and_value_types_are_the_contract(case: Any, fmt: str) -> None:
    data = _encode(case, fmt).decode("utf-8")
    records = json.loads(data) if fmt == "json" else [json.loads(x) for x in data.splitlines()]
    expected = contract()[fmt]
    allowed = {name: {kind, "null"} for name, kind in expected}
    for record in records:
        assert list(record) == [name for name, _ in expected]
        for name, value in record.items():
            assert JSON_TYPES[type(value)] in allowed[name], (name, value)
