"""The pytest plugin's fixtures and marker."""

from __future__ import annotations

import json
import os

import pytest

from airflow_provider_clarity.testing import ClarityEmulator
from tests.testing.fixtures import dims, get


# ---------------------------------------------------------------------- pytest plugin
def test_plugin_fixtures_give_a_running_emulator_and_token(
    clarity_emulator: ClarityEmulator, clarity_token: str
) -> None:
    response = get(clarity_emulator, clarity_token, **dims("Browser"))

    assert response.status_code == 200
    assert clarity_emulator.calls("demo-project") == 1


@pytest.mark.clarity_emulator(daily_limit=1, seed=9)
def test_plugin_marker_configures_the_emulator(
    clarity_emulator: ClarityEmulator, clarity_token: str
) -> None:
    assert clarity_emulator.seed == 9
    assert get(clarity_emulator, clarity_token).status_code == 200
    assert get(clarity_emulator, clarity_token).status_code == 429


def test_plugin_connection_fixture_sets_the_env_var(
    clarity_connection: str, clarity_emulator: ClarityEmulator, clarity_token: str
) -> None:
    conn = json.loads(os.environ["AIRFLOW_CONN_CLARITY_DEFAULT"])

    assert clarity_connection == "clarity_default"
    assert conn["host"] == clarity_emulator.base_url
    assert conn["password"] == clarity_token
    assert conn["extra"] == {"project_id": "demo-project"}
