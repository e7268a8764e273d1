"""ClarityExportOperator writing to ``s3://`` through ObjectStoragePath, against moto's S3 server.

The moto server is started by the suite (``moto_endpoint`` and ``s3`` in tests/conftest.py)
on a free 127.0.0.1 port; the ``aws_default`` connection points at it with dummy keys.
"""

from __future__ import annotations

import io
import json
import sys
from typing import Any

import pandas as pd
import pytest
from airflow.sdk import Asset

from airflow_provider_clarity import normalize
from airflow_provider_clarity.exceptions import ClarityRequestError
from airflow_provider_clarity.operators.export import ClarityExportOperator
from airflow_provider_clarity.testing.emulator import ClarityEmulator
from tests.conftest import S3_BUCKET
from tests.operators.test_export import conn, ledger_store, make_context  # noqa: F401

BUCKET = S3_BUCKET


def _keys(client: Any) -> list[str]:
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_s3_destination_writes_table_and_raw_beside_it(
    conn: str,  # noqa: F811
    clarity_emulator: ClarityEmulator,
    clarity_token: str,
    s3: Any,
) -> None:
    destination = f"s3://aws_default@{BUCKET}/clarity/dt=2025-01-01/os.parquet"
    op = ClarityExportOperator(task_id="export", dimensions=["OS"], destination=destination)
    assert op.outlets == [Asset(uri=f"s3://{BUCKET}/clarity/dt=2025-01-01/os.parquet")]
    context = make_context()

    result = op.execute(context)

    assert _keys(s3) == ["clarity/dt=2025-01-01/os.parquet", "clarity/dt=2025-01-01/os.raw.json"]
    raw_body = s3.get_object(Bucket=BUCKET, Key="clarity/dt=2025-01-01/os.raw.json")["Body"].read()
    raw = json.loads(raw_body)
    assert raw["format"] == "clarity-raw/1"
    assert raw["request"] == {"numOfDays": "1", "dimension1": "OS"}
    table = s3.get_object(Bucket=BUCKET, Key="clarity/dt=2025-01-01/os.parquet")["Body"].read()
    written = pd.read_parquet(io.BytesIO(table))
    expected = normalize.to_dataframe(
        raw["response"],
        exported_at=raw["exported_at"],
        num_of_days=1,
        project_id=raw["project_id"],
        dimensions="OS",
    )
    pd.testing.assert_frame_equal(written, expected)

    assert result["path"] == destination
    assert result["raw_path"] == f"s3://aws_default@{BUCKET}/clarity/dt=2025-01-01/os.raw.json"
    assert result["rows"] == len(written)
    extra = context["outlet_events"][op.outlets[0]].extra
    assert extra["rows"] == len(written)
    assert clarity_token not in raw_body.decode() and clarity_token.encode() not in table

    # A retry of the same task instance reads the raw snapshot back from S3: no second call.
    again = ClarityExportOperator(task_id="export", dimensions=["OS"], destination=destination)
    retried = again.execute(make_context())
    assert retried["exported_at"] == result["exported_at"]
    # Same snapshot, same window and coverage: the retry's own call is not "previous".
    assert retried["window_start"] == result["window_start"]
    assert (retried["overlap_minutes"], retried["gap_minutes"]) == (None, None)
    assert clarity_emulator.total_requests() == 1

    lineage = op.get_openlineage_facets_on_complete(None)
    assert lineage is not None
    assert [(d.namespace, d.name) for d in lineage.outputs] == [
        (f"s3://{BUCKET}", "clarity/dt=2025-01-01/os.parquet")
    ]


@pytest.mark.parametrize("missing", ["amazon provider", "s3fs"])
def test_s3_without_the_amazon_extra_fails_before_any_call(
    conn: str,  # noqa: F811
    clarity_emulator: ClarityEmulator,
    monkeypatch: pytest.MonkeyPatch,
    missing: str,
) -> None:
    from airflow.sdk.io import fs, store

    monkeypatch.setattr(store, "_STORE_CACHE", {})
    if missing == "s3fs":
        monkeypatch.setitem(sys.modules, "s3fs", None)  # import s3fs -> ImportError
    else:
        # Only the built-in file:// filesystem is registered, as without the provider.
        monkeypatch.setattr(fs, "_register_filesystems", lambda: dict(fs._BUILTIN_SCHEME_TO_FS))

    op = ClarityExportOperator(
        task_id="export", destination=f"s3://aws_default@{BUCKET}/os.parquet"
    )
    with pytest.raises(ClarityRequestError) as info:
        op.execute(make_context())

    assert "pip install 'airflow-provider-clarity[amazon]'" in str(info.value)
    assert "No Clarity call was made" in str(info.value)
    assert clarity_emulator.total_requests() == 0
