"""Test helpers for the Clarity provider: an emulator of the Clarity Data Export API.

``ClarityEmulator`` is a real HTTP server on 127.0.0.1 that behaves like the live API
(tokens, quota, payload quirks, faults). It is imported lazily so that the pytest plugin,
which pytest loads in every session, stays cheap to import.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_clarity.testing.emulator import ClarityEmulator, RecordedRequest

__all__ = ["ClarityEmulator", "RecordedRequest", "assert_fits_budget"]


def assert_fits_budget(dags_folder: str | os.PathLike[str] | None = None) -> str:
    """Fail (``AssertionError`` with the report) when the DAGs in ``dags_folder`` spend more
    Clarity calls on their busiest day than a project allows, or a DAG file does not import.

    The same check as ``python -m airflow_provider_clarity.plan``: offline, no Clarity call.
    Returns the report when the DAGs fit.
    """
    from airflow_provider_clarity.plan.cli import check

    status, report = check(dags_folder)
    assert status == 0, report
    return report


def __getattr__(name: str) -> Any:
    if name in ("ClarityEmulator", "RecordedRequest"):
        from airflow_provider_clarity.testing import emulator

        return getattr(emulator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
