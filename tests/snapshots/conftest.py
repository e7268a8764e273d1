"""Fixtures of the snapshot tests: the operator tests' connection and in-memory ledger."""

from tests.operators.fixtures import conn, ledger_store  # noqa: F401
