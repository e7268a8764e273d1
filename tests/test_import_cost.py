"""DAG files import the operator on every parse (every 30 s per DAG processor): keep it light."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("pandas", "pyarrow", "s3fs", "openlineage", "numpy")


def test_importing_the_operator_does_not_import_heavy_packages() -> None:
    code = (
        "import sys\n"
        "import airflow_provider_clarity.operators.export\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert loaded == "", f"importing the operator imported: {loaded}"
