"""Fixtures of the hook tests (defined in tests.hooks.fixtures, shared with tests/connection)."""

from tests.hooks.fixtures import emulator, hook, set_connection, token  # noqa: F401
