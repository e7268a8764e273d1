"""Fixtures of the operator tests (defined in tests.operators.fixtures)."""

from tests.operators.fixtures import conn, ledger_store, variable_ledger  # noqa: F401
