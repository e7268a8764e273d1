"""python -m airflow_provider_clarity.testing: a working URL, token and connection."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import requests

from tests.testing.fixtures import METRIC_BLOCKS


# ---------------------------------------------------------------------- command line
def test_cli_prints_a_working_url_token_and_connection() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_clarity.testing", "--project", "cli-project"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = dict(proc.stdout.readline().rstrip("\n").split("=", 1) for _ in range(3))
        export_line = proc.stdout.readline()
        base_url = lines["CLARITY_EMULATOR_URL"]
        token = lines["CLARITY_TOKEN"]
        conn = json.loads(lines["AIRFLOW_CONN_CLARITY_DEFAULT"])

        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base_url)
        assert not base_url.endswith(":0")
        assert conn == {
            "conn_type": "clarity",
            "host": base_url,
            "password": token,
            "extra": {"project_id": "cli-project"},
        }
        assert export_line.startswith("export AIRFLOW_CONN_CLARITY_DEFAULT='{")

        response = requests.get(
            base_url + "/export-data/api/v1/project-live-insights?numOfDays=1&dimension1=OS",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        payload = response.json()
        assert response.status_code == 200
        assert [b["metricName"] for b in payload] == METRIC_BLOCKS
        assert all({"Os", "OS"} & set(row) for b in payload for row in b["information"]), (
            "every row carries the OS dimension"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0
