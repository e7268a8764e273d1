"""ClarityDeriveOperator: tables rolled up from an export's kept raw snapshot, no call spent."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from airflow.sdk import Asset

from airflow_provider_clarity import normalize
from airflow_provider_clarity.exceptions import ClarityRequestError
from airflow_provider_clarity.operators.derive import ClarityDeriveOperator
from airflow_provider_clarity.operators.export import ClarityExportOperator
from airflow_provider_clarity.testing.emulator import ClarityEmulator
from tests.operators.fixtures import PROJECT, make_context

# Frozen at import: the emulator answers for one moment, and tokens it issues stay valid.
AT = datetime.now(UTC)


def fixed_clock() -> datetime:
    return AT


def counts(frame: pd.DataFrame, *keys: str) -> dict[tuple[object, ...], int]:
    traffic = frame[frame["metric"] == "Traffic"]
    return {
        tuple(None if pd.isna(row[k]) else row[k] for k in keys): int(row["total_session_count"])
        for _, row in traffic.iterrows()
    }


@pytest.mark.clarity_emulator(clock=fixed_clock, missing_fields=False)
def test_derived_tables_equal_direct_answers_and_spend_no_call(
    conn: str, clarity_emulator: ClarityEmulator, tmp_path: Path
) -> None:
    export = ClarityExportOperator(
        task_id="export", dimensions=["Device", "OS"], destination=str(tmp_path / "pairs.parquet")
    )
    export.execute(make_context())
    calls = clarity_emulator.calls(PROJECT)
    derive = ClarityDeriveOperator(
        task_id="derive",
        source=str(tmp_path / "pairs.raw.json"),
        outputs={"Device": str(tmp_path / "device.parquet"), "": str(tmp_path / "total.parquet")},
    )

    result = derive.execute(make_context())

    assert clarity_emulator.calls(PROJECT) == calls == 1
    device = pd.read_parquet(tmp_path / "device.parquet")
    direct = normalize.to_dataframe(clarity_emulator.payload(PROJECT, dimensions=("Device",)))
    assert counts(device, "device") == counts(direct, "device")
    assert set(device["derived_from"]) == {"Device,OS"}
    assert device["distinct_user_count"].isna().all()
    assert list(device.columns[: len(normalize.COLUMNS)]) == list(normalize.COLUMNS)
    total = pd.read_parquet(tmp_path / "total.parquet")
    snapshot = clarity_emulator.payload(PROJECT)
    assert counts(total) == {(): int(snapshot[7]["information"][0]["totalSessionCount"])}
    assert result["outputs"]["Device"]["derived_from"] == "Device,OS"
    assert Asset(uri=(tmp_path / "device.parquet").as_uri()) in derive.outlets
    assert Asset(uri=(tmp_path / "pairs.raw.json").as_uri()) in derive.inlets


def test_jsonl_output_carries_the_source_breakdown(
    conn: str, clarity_emulator: ClarityEmulator, tmp_path: Path
) -> None:
    ClarityExportOperator(
        task_id="export", dimensions="Browser,Country", destination=str(tmp_path / "b.parquet")
    ).execute(make_context())
    ClarityDeriveOperator(
        task_id="derive",
        source=str(tmp_path / "b.raw.json"),
        outputs={"Country": str(tmp_path / "country.jsonl")},
        output_format="jsonl",
    ).execute(make_context())

    rows = [json.loads(line) for line in (tmp_path / "country.jsonl").read_text().splitlines()]
    assert rows and {r["derived_from"] for r in rows} == {"Browser,Country"}
    assert all(r["browser"] is None for r in rows)


def test_unsound_or_missing_sources_are_refused(
    conn: str, clarity_emulator: ClarityEmulator, tmp_path: Path
) -> None:
    missing = ClarityDeriveOperator(
        task_id="derive", source=str(tmp_path / "none.raw.json"), outputs={"": str(tmp_path / "x")}
    )
    with pytest.raises(ClarityRequestError, match="No clarity-raw/1 snapshot"):
        missing.execute(make_context())

    clarity_emulator.configure_project(PROJECT, url_count=40)  # no block at the row cap
    ClarityExportOperator(
        task_id="export", dimensions="URL,Device", destination=str(tmp_path / "u.parquet")
    ).execute(make_context())
    summing_url = ClarityDeriveOperator(
        task_id="derive",
        source=str(tmp_path / "u.raw.json"),
        outputs={"URL": str(tmp_path / "url"), "Device": str(tmp_path / "d")},
    )
    with pytest.raises(ClarityRequestError, match="URL cannot be summed out"):
        summing_url.execute(make_context())
    assert not (tmp_path / "d").exists()
    assert not (tmp_path / "url").exists()  # the sound one is not written either
