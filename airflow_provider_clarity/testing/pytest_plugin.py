"""pytest plugin: fixtures that run the Clarity emulator for your DAG tests.

Registered under the ``pytest11`` entry point, so it is active in every pytest session
where the provider is installed. It therefore imports nothing heavy (no Airflow, no
pandas, not even the emulator) until a test asks for a fixture.

Fixtures:

- ``clarity_emulator``: a started ``airflow_provider_clarity.testing.ClarityEmulator``,
  stopped after the test. Pass constructor arguments with the marker
  ``@pytest.mark.clarity_emulator(daily_limit=3, seed=7)``.
- ``clarity_token``: a valid token for the project ``"demo-project"``.
- ``clarity_connection``: sets ``AIRFLOW_CONN_CLARITY_DEFAULT`` (for the test only) to a
  connection to the emulator for ``"demo-project"`` and returns the conn id
  ``"clarity_default"``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_provider_clarity.testing.emulator import ClarityEmulator

DEFAULT_PROJECT = "demo-project"
DEFAULT_CONN_ID = "clarity_default"


def pytest_configure(config: pytest.Config) -> None:
    """Declare the ``clarity_emulator`` marker so ``--strict-markers`` accepts it."""
    config.addinivalue_line(
        "markers",
        "clarity_emulator(**kwargs): keyword arguments for the ClarityEmulator that the "
        "clarity_emulator fixture starts (seed, daily_limit, window, clock, ...)",
    )


@pytest.fixture
def clarity_emulator(request: pytest.FixtureRequest) -> Iterator[ClarityEmulator]:
    """A running Clarity emulator on a free 127.0.0.1 port, stopped after the test."""
    from airflow_provider_clarity.testing.emulator import ClarityEmulator

    marker = request.node.get_closest_marker("clarity_emulator")
    kwargs = dict(marker.kwargs) if marker else {}
    with ClarityEmulator(**kwargs) as emulator:
        yield emulator


@pytest.fixture
def clarity_token(clarity_emulator: ClarityEmulator) -> str:
    """A token the ``clarity_emulator`` accepts for the project ``"demo-project"``."""
    return clarity_emulator.issue_token(DEFAULT_PROJECT)


@pytest.fixture
def clarity_connection(
    clarity_emulator: ClarityEmulator, clarity_token: str, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Point the ``clarity_default`` Airflow connection at the emulator; returns its conn id."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_CLARITY_DEFAULT",
        clarity_emulator.airflow_conn_json(clarity_token, project_id=DEFAULT_PROJECT),
    )
    return DEFAULT_CONN_ID
