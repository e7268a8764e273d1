"""A token's claims read offline: never a crash, whatever the string."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("token", "ok"),
    [
        ("not-a-jwt", False),
        ("a.b.c", False),
        ("eyJhbGciOiJIUzI1NiJ9.!!!.sig", False),
        # Claims decoded by hand: an absurd exp is treated as no expiry, not a crash.
        ("eyJhbGciOiJIUzI1NiJ9.eyJhdWQiOiJjbGFyaXR5LmRhdGEtZXhwb3J0ZXIiLCJleHAiOjFlMzAwfQ.s", True),
    ],
)
def test_offline_token_inspection_never_crashes(token: str, ok: bool) -> None:
    from airflow_provider_clarity.connection.token import inspect_token as _inspect_token

    assert (_inspect_token(token).problem is None) is ok
