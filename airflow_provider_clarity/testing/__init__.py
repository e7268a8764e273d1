"""Test helpers for the Clarity provider: an emulator of the Clarity Data Export API.

``ClarityEmulator`` is a real HTTP server on 127.0.0.1 that behaves like the live API
(tokens, quota, payload quirks, faults). It is imported lazily so that the pytest plugin,
which pytest loads in every session, stays cheap to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_clarity.testing.emulator import ClarityEmulator, RecordedRequest

__all__ = ["ClarityEmulator", "RecordedRequest"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from airflow_provider_clarity.testing import emulator

        return getattr(emulator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
