"""Parsing a DAG file with five Clarity tasks loads nothing heavy.

Airflow's DAG processor runs every DAG file every 30 s; whatever the provider imports at
module level is paid on each of those parses. The DAG is the one ``make bench`` times
(benchmarks/dags/clarity_five_tasks.py); this test checks the module list, not the time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DAG_FILE = Path(__file__).resolve().parent.parent / "benchmarks" / "dags" / "clarity_five_tasks.py"

# Nothing under these may be imported by the DAG file: data libraries, cloud filesystems
# and their SDKs, OpenLineage, and the provider's test emulator.
FORBIDDEN = (
    "pandas",
    "pyarrow",
    "numpy",
    "s3fs",
    "gcsfs",
    "adlfs",
    "boto3",
    "botocore",
    "openlineage",
    "airflow.providers.openlineage",
    "airflow.providers.amazon",
    "airflow.providers.google",
    "airflow_provider_clarity.testing",
)
# Not loaded at all, by Airflow itself either.
ABSENT = ("pandas", "pyarrow", "numpy", "s3fs", "gcsfs", "openlineage")

# Run in a fresh interpreter, as the DAG processor's child does: airflow.sdk is loaded
# before the DAG file runs.
PARSE = """
import json, runpy, sys
from airflow.sdk import DAG
before = set(sys.modules)
namespace = runpy.run_path(sys.argv[1])
dags = [value for value in namespace.values() if isinstance(value, DAG)]
print(json.dumps({
    "new": sorted(set(sys.modules) - before),
    "loaded": sorted(sys.modules),
    "tasks": {dag.dag_id: {t.task_id: type(t).__name__ for t in dag.tasks} for dag in dags},
}))
"""


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def _parse() -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", PARSE, str(DAG_FILE)],
        capture_output=True,
        text=True,
        check=True,
        timeout=180,
    )
    parsed: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


def test_parsing_the_five_task_clarity_dag_loads_nothing_heavy() -> None:
    parsed = _parse()
    new = parsed["new"]
    loaded = parsed["loaded"]
    assert isinstance(new, list) and isinstance(loaded, list)

    assert parsed["tasks"] == {
        "clarity_five_tasks": {
            "wait_for_quota": "ClarityQuotaSensor",
            "export_snapshot": "ClarityExportOperator",
            "export_os": "ClarityExportOperator",
            "export_device_browser": "ClarityExportOperator",
            "export_url": "ClarityExportOperator",
        }
    }
    # The provider really was imported by the parse, not before it.
    assert "airflow_provider_clarity.operators.export" in new
    assert "airflow_provider_clarity.sensors.quota" in new

    heavy = [name for name in new if _under(name, FORBIDDEN)]
    assert heavy == [], f"parsing the DAG file imported: {heavy}"
    present = [name for name in loaded if _under(name, ABSENT)]
    assert present == [], f"loaded after parsing the DAG file: {present}"
