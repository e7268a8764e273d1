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
from airflow_provider_clarity.quota import MemoryLedgerStore
from airflow_provider_clarity.testing.emulator import ClarityEmulator
from tests.conftest import S3_BUCKET
from tests.operators.fixtures import charged, make_context

BUCKET = S3_BUCKET


def _keys(client: Any) -> list[str]:
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_s3_destination_writes_table_and_raw_beside_it(
    conn: str,
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
    conn: str,
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


@pytest.mark.parametrize("credentials", ["missing", "invalid"])
@pytest.mark.parametrize("force_refresh", [True, False])
def test_unreachable_s3_fails_before_the_call_even_with_force_refresh(
    conn: str,
    clarity_emulator: ClarityEmulator,
    ledger_store: MemoryLedgerStore,
    moto_endpoint: str,
    s3: Any,
    monkeypatch: pytest.MonkeyPatch,
    credentials: str,
    force_refresh: bool,
) -> None:
    import moto.settings

    # Nothing may look for other credentials (instance metadata, a profile).
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    login: dict[str, dict[str, str]] = {
        "missing": {},
        "invalid": {"login": "AKIANOTAKEY", "password": "wrong"},
    }
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        json.dumps(
            {
                "conn_type": "aws",
                **login[credentials],
                "extra": {"endpoint_url": moto_endpoint, "region_name": "us-east-1"},
            }
        ),
    )
    op = ClarityExportOperator(
        task_id="export",
        destination=f"s3://aws_default@{BUCKET}/clarity/os.parquet",
        force_refresh=force_refresh,
    )

    # moto checks signatures during the task, as S3 does (not while the fixture cleans up).
    with pytest.MonkeyPatch.context() as auth, pytest.raises(ClarityRequestError) as info:
        auth.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
        op.execute(make_context())

    text = str(info.value)
    assert f"destination 's3://{BUCKET}/clarity/os.raw.json' cannot be used" in text
    assert "No Clarity call was made" in text
    assert "check the credentials of the Airflow connection 'aws_default'" in text
    assert clarity_emulator.total_requests() == 0
    assert charged(ledger_store) == 0


def test_missing_bucket_fails_before_the_call(
    conn: str,
    clarity_emulator: ClarityEmulator,
    ledger_store: MemoryLedgerStore,
    s3: Any,
) -> None:
    op = ClarityExportOperator(
        task_id="export",
        destination="s3://aws_default@no-such-clarity-bucket/os.parquet",
        force_refresh=True,
    )

    with pytest.raises(ClarityRequestError, match="its bucket 'no-such-clarity-bucket' does not"):
        op.execute(make_context())

    assert clarity_emulator.total_requests() == 0
    assert charged(ledger_store) == 0


def test_a_bare_bucket_is_not_a_destination(
    conn: str,
    clarity_emulator: ClarityEmulator,
    s3: Any,
) -> None:
    op = ClarityExportOperator(task_id="export", destination="{{ d }}")
    op.destination = f"s3://aws_default@{BUCKET}"

    with pytest.raises(ClarityRequestError, match=f"'s3://{BUCKET}/os.parquet'"):
        op.execute(make_context())

    assert clarity_emulator.total_requests() == 0
    assert _keys(s3) == []
