"""Fixtures of the emulator tests: a fresh emulator and a token it issued."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_clarity.testing import ClarityEmulator
from tests.testing.fixtures import PROJECT


@pytest.fixture
def emulator() -> Iterator[ClarityEmulator]:
    with ClarityEmulator(seed=1) as emu:
        yield emu


@pytest.fixture
def token(emulator: ClarityEmulator) -> str:
    return emulator.issue_token(PROJECT)
