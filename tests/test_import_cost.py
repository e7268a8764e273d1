"""DAG files import the operator on every parse (every 30 s per DAG processor): keep it light."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("pandas", "pyarrow", "s3fs", "openlineage", "numpy")


def _loaded_by_import(module: str, names: tuple[str, ...]) -> str:
    """Which of ``names`` a fresh interpreter has in ``sys.modules`` after importing ``module``."""
    code = (
        f"import sys\nimport {module}\nprint(','.join(m for m in {names!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


def test_importing_the_operator_does_not_import_heavy_packages() -> None:
    loaded = _loaded_by_import("airflow_provider_clarity.operators.export", HEAVY)
    assert loaded == "", f"importing the operator imported: {loaded}"


def test_loading_the_quota_plugin_builds_no_web_app() -> None:
    # Airflow imports plugins in the scheduler, workers and the CLI too: the FastAPI app and
    # Airflow's security module are only built on the api-server's first request.
    later = ("fastapi", "airflow.api_fastapi.core_api.security", "airflow_provider_clarity.quota")
    loaded = _loaded_by_import("airflow_provider_clarity.plugins.quota_plugin", later + HEAVY)
    assert loaded == "", f"importing the quota plugin imported: {loaded}"


def test_the_quota_page_counts_calls_without_the_plan_command() -> None:
    # The page's schedule imports plan's counting modules; the command-line module (its
    # argument parsing and report) stays out of the api-server.
    command = ("airflow_provider_clarity.plan.cli",)
    loaded = _loaded_by_import("airflow_provider_clarity.plugins.quota_schedule", command)
    assert loaded == "", f"the quota page's schedule imported: {loaded}"
    assert _loaded_by_import("airflow_provider_clarity.plan", command) == "", "plan loads it lazily"
    assert _loaded_by_import(command[0], command) == command[0], "the walk sees the command"
