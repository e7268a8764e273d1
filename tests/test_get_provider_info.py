"""What Airflow discovers about the provider, and `airflow connections test` spending nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_clarity import __version__
from airflow_provider_clarity.testing.emulator import ClarityEmulator
from airflow_provider_clarity.version_compat import (
    AIRFLOW_V_3_2_PLUS,
    AIRFLOW_V_3_3_PLUS,
    HAS_CONN_FIELDS,
)

HOOK_CLASS = "airflow_provider_clarity.hooks.clarity.ClarityHook"


@pytest.fixture(scope="module")
def providers_manager() -> Any:
    from airflow.providers_manager import ProvidersManager

    return ProvidersManager()


def test_provider_is_discovered(providers_manager: Any) -> None:
    provider = providers_manager.providers["airflow-provider-clarity"]
    assert provider.version == __version__
    assert provider.data["name"] == "Microsoft Clarity"


def _task_runtime_hooks(providers_manager: Any) -> Any:
    """The hooks the Task SDK resolves connections with (its own manager from Airflow 3.2)."""
    if not AIRFLOW_V_3_2_PLUS:
        return providers_manager.hooks
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    return ProvidersManagerTaskRuntime().hooks


def _connection_type_ui(providers_manager: Any) -> list[Any]:
    """What the connection form lists for the type ``clarity``."""
    if not AIRFLOW_V_3_3_PLUS:  # 3.1 and 3.2 list it from the hooks they discovered
        return [providers_manager.hooks["clarity"]]
    return [
        meta
        for meta in providers_manager.iter_connection_type_hook_ui_metadata()
        if meta.connection_type == "clarity"
    ]


def test_clarity_connection_type_maps_to_the_hook(providers_manager: Any) -> None:
    [ui] = _connection_type_ui(providers_manager)
    assert ui.hook_name == "Microsoft Clarity"
    assert ui.hook_class_name == HOOK_CLASS

    hook = _task_runtime_hooks(providers_manager)["clarity"]
    assert hook is not None
    assert hook.hook_class_name == HOOK_CLASS
    assert hook.connection_id_attribute_name == "clarity_conn_id"


NO_CONN_FIELDS = pytest.mark.skipif(
    not HAS_CONN_FIELDS,
    reason="provider conn-fields arrived in Airflow 3.2; on 3.1 the extras go in the Extra JSON",
)


@NO_CONN_FIELDS
def test_conn_fields_are_registered(providers_manager: Any) -> None:
    widgets = providers_manager.connection_form_widgets
    project = widgets["extra__clarity__project_id"]
    assert project.hook_class_name == HOOK_CLASS
    assert "string" in project.field["schema"]["type"]

    daily_limit = widgets["extra__clarity__daily_limit"].field
    assert "integer" in daily_limit["schema"]["type"]
    assert daily_limit["value"] == 10
    assert daily_limit["schema"]["default"] == 10
    assert daily_limit["schema"]["minimum"] == 1
    assert not widgets["extra__clarity__daily_limit"].is_sensitive


@NO_CONN_FIELDS
def test_field_behaviours(providers_manager: Any) -> None:
    behaviour = providers_manager.field_behaviours["clarity"]
    assert set(behaviour["hidden_fields"]) == {"login", "schema", "port"}
    assert behaviour["relabeling"] == {"password": "API token"}
    assert behaviour["placeholders"]["host"] == "https://www.clarity.ms"


def _airflow_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    airflow = Path(sys.executable).parent / "airflow"
    return subprocess.run(
        [str(airflow), *args], env=env, capture_output=True, text=True, timeout=180
    )


def _cli_env(connection: str) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW_CONN_CLARITY_DEFAULT": connection,
    }


def test_airflow_connections_test_succeeds_offline(
    airflow_db: Path, clarity_emulator: ClarityEmulator
) -> None:
    token = clarity_emulator.issue_token("demo-project")
    result = _airflow_cli(
        "connections",
        "test",
        "clarity_default",
        env=_cli_env(clarity_emulator.airflow_conn_json(token)),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Connection success!" in result.stdout
    assert clarity_emulator.total_requests() == 0
    assert token not in result.stdout + result.stderr


# Airflow 3.3's own Connection.get_hook still uses the deprecated ProvidersManager.hooks.
@pytest.mark.filterwarnings("ignore:ProvidersManager.hooks is deprecated:FutureWarning")
def test_connection_test_explains_an_expired_token(
    clarity_emulator: ClarityEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path the UI and ``POST /api/v2/connections/test`` take, in process."""
    from airflow.models import Connection

    token = clarity_emulator.issue_token("demo-project", expired=True)
    monkeypatch.setenv("AIRFLOW_CONN_CLARITY_EXPIRED", clarity_emulator.airflow_conn_json(token))
    connection = Connection.get_connection_from_secrets("clarity_expired")

    ok, message = connection.test_connection()

    assert not ok
    assert "expired on" in message
    assert "Clarity > Settings > Data Export" in message
    assert token not in message
    assert clarity_emulator.total_requests() == 0
