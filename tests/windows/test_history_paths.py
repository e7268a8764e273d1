"""The ``history`` check reads the URIs the operator writes (local, ``file://``, ``s3://``)
and refuses to pass a folder it cannot check: missing, or holding no export."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_clarity.windows import history
from tests.conftest import S3_BUCKET

DAY = timedelta(days=1)
FIRST = datetime(2026, 11, 27, 0, 5, tzinfo=UTC)
# Three daily OS snapshots; the third was taken 40 minutes late: a 40 min gap before it.
ENDS = [FIRST, FIRST + DAY, FIRST + 2 * DAY + timedelta(minutes=40)]


def _parquet(end: datetime) -> bytes:
    table = pa.table(
        {
            "project_id": ["shop"],
            "dimensions": ["OS"],
            "window_start": pa.array([end - DAY], pa.timestamp("us", tz="UTC")),
            "window_end": pa.array([end], pa.timestamp("us", tz="UTC")),
        }
    )
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def _files() -> dict[str, bytes]:
    return {f"dt={end:%Y-%m-%d}/by_os.parquet": _parquet(end) for end in ENDS}


def _write_local(base: Path) -> None:
    for name, data in _files().items():
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_bytes(data)


def _run(root: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = history.main([root])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("as_uri", [False, True], ids=["path", "file-uri"])
def test_a_local_history_is_checked_by_path_and_by_file_uri(
    tmp_path: Path, as_uri: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_local(tmp_path / "clarity")
    root = (tmp_path / "clarity").as_uri() if as_uri else str(tmp_path / "clarity")

    code, out, _ = _run(root, capsys)

    assert code == 1, out
    assert "shop OS: 3 snapshots" in out
    assert "shop OS: 40 min gap between dt=2026-11-28/by_os.parquet" in out


@pytest.mark.parametrize("as_uri", [False, True], ids=["path", "file-uri"])
def test_a_missing_or_empty_folder_is_an_error_not_a_pass(
    tmp_path: Path, as_uri: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere"
    code, out, err = _run(missing.as_uri() if as_uri else str(missing), capsys)
    assert code == 2 and "no gap or overlap" not in out
    assert f"{missing} does not exist, so there is no history to check" in err

    empty = tmp_path / "empty"
    (empty / "dt=2026-11-27").mkdir(parents=True)
    (empty / "dt=2026-11-27" / "notes.txt").write_text("not an export")
    code, out, err = _run(empty.as_uri() if as_uri else str(empty), capsys)
    assert code == 2 and "no gap or overlap" not in out
    assert "holds no Parquet file with the window columns" in err


def _run_command(root: str) -> tuple[int, str, str]:
    """``python -m airflow_provider_clarity.windows.history ROOT`` as a user runs it (in a
    process of its own: the browser tests leave an event loop running in this one, and
    Airflow's S3 filesystem starts with ``asyncio.run``)."""
    done = subprocess.run(
        [sys.executable, "-m", "airflow_provider_clarity.windows.history", root],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout, done.stderr


def test_an_s3_history_is_read_through_object_storage(s3: Any) -> None:
    for name, data in _files().items():
        s3.put_object(Bucket=S3_BUCKET, Key=f"clarity/{name}", Body=data)

    code, out, _ = _run_command(f"s3://aws_default@{S3_BUCKET}/clarity")

    assert code == 1, out
    assert "shop OS: 3 snapshots" in out
    assert "shop OS: 40 min gap between dt=2026-11-28/by_os.parquet" in out
    # On time from the first two only: no finding, exit 0.
    s3.delete_object(Bucket=S3_BUCKET, Key="clarity/dt=2026-11-29/by_os.parquet")
    code, out, _ = _run_command(f"s3://aws_default@{S3_BUCKET}/clarity/")
    assert (code, "no gap or overlap above 15 min" in out) == (0, True)

    code, out, err = _run_command(f"s3://aws_default@{S3_BUCKET}/elsewhere")
    assert code == 2 and "no gap or overlap" not in out
    assert f"s3://{S3_BUCKET}/elsewhere does not exist" in err
