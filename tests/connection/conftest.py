"""Fixtures of the connection tests: the hook tests' emulator, connection and hook."""

from tests.hooks.fixtures import emulator, hook, set_connection, token  # noqa: F401
