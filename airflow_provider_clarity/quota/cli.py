"""The ``usage`` command: print who spent a project's calls, from a shell with DB access.

``python -m airflow_provider_clarity.quota usage <conn_id | project_id>``
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import TextIO

from airflow_provider_clarity.connection.known import (
    by_project,
    clarity_connections,
    describe_known,
    settings_of,
)
from airflow_provider_clarity.connection.settings import QuotaSettings
from airflow_provider_clarity.exceptions import ClarityError
from airflow_provider_clarity.quota.ledger import QuotaLedger
from airflow_provider_clarity.quota.report import QuotaStatus, printable, usage_text
from airflow_provider_clarity.quota.store import VARIABLE_PREFIX, VariableLedgerStore, ledger_key

#: The exit code of a target that names no project, or a ledger that cannot be read.
EXIT_UNKNOWN = 2
#: How a project id with no connection naming it was resolved.
_STORED_SOURCES = ("project id, settings stored by the last task", "project id, default settings")


class UnknownTargetError(ClarityError):
    """The target is neither a connection id nor a project with a ledger or a connection."""


def _ledger_projects() -> list[str]:
    """The project id of every ledger Variable in the metadata DB (its key's, if unreadable)."""
    import json

    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    found = []
    with create_session() as session:
        for row in session.scalars(
            select(Variable).where(Variable.key.startswith(VARIABLE_PREFIX))
        ):
            try:
                project_id = json.loads(row.val or "null").get("project_id")
            except Exception:  # an unreadable ledger still names a project
                project_id = None
            found.append(str(project_id or row.key.removeprefix(VARIABLE_PREFIX)))
    return sorted(found)


def _unknown(target: str) -> UnknownTargetError:
    connections = clarity_connections()
    try:
        projects = "\n".join(f"  {p}" for p in _ledger_projects()) or "  (none)"
    except Exception as err:  # no metadata DB: say so instead of listing nothing
        projects = f"  (the metadata DB cannot be read: {type(err).__name__})"
    return UnknownTargetError(
        f"{target!r} is neither a connection id nor a Clarity project Airflow knows: no "
        f"connection has that id, no clarity connection names that project, and it has no "
        f"ledger Variable ({ledger_key(target)}).\n"
        f"Projects with a ledger:\n{projects}\n"
        f"Clarity connections (metadata DB and AIRFLOW_CONN_* variables):\n"
        f"{describe_known(connections)}\n"
        "Run `python -m airflow_provider_clarity.quota usage <one of them>`. A connection kept "
        "in a secrets backend is not listed: give its id."
    )


def ledger_for(target: str) -> tuple[QuotaLedger, str]:
    """The ledger for a connection id, else for a project id with the settings its exports use.

    A project id takes the settings of the clarity connections that name it; with none, the
    settings the last task stored in its ledger (the source says so).

    :raises ClarityRequestError: the connection exists but one of its extras does not parse.
    :raises UnknownTargetError: no connection, no connection's project and no ledger.
    :raises ClarityError: the ledger document cannot be read.
    """
    from airflow_provider_clarity.version_compat import AirflowNotFoundException, BaseHook

    try:
        connection = BaseHook.get_connection(target)
    except AirflowNotFoundException:
        pass
    else:
        settings = settings_of(target, connection.extra_dejson, connection.password)
        return QuotaLedger.from_settings(settings), f"connection {target!r}"
    named = by_project(clarity_connections()).get(target)
    if named is not None:
        return QuotaLedger.from_settings(
            named.settings
        ), f"project id, settings of {named.describe()}"
    store = VariableLedgerStore(ledger_key(target))
    document = store.load()
    if document is None:
        raise _unknown(target)
    stored = QuotaSettings.from_stored(target, document.get("settings"))
    source = _STORED_SOURCES[0] if stored else _STORED_SOURCES[1]
    return QuotaLedger.from_settings(stored or QuotaSettings(target), store=store), source


def shown(status: QuotaStatus) -> QuotaStatus:
    """``status`` with every string that came from the ledger document made ``printable``,
    so a caller, request or outcome cannot forge a line of the report or steer the terminal."""
    records = [
        tuple(
            replace(r, caller=printable(r.caller), request=printable(r.request),
                    outcome=printable(r.outcome))
            for r in group
        )
        for group in (status.counted, status.earlier)
    ]  # fmt: skip
    settings = replace(status.settings, project_id=printable(status.settings.project_id))
    return replace(
        status,
        settings=settings,
        key=printable(status.key),
        counted=records[0],
        earlier=records[1],
    )


def emit(text: str, file: TextIO | None = None) -> None:
    """Print ``text`` line by line, each ``printable``: the one way this command writes."""
    for line in str(text).split("\n"):
        print(printable(line), file=file or sys.stdout)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m airflow_provider_clarity.quota usage <conn_id | project_id>``.

    :returns: 0, or ``EXIT_UNKNOWN`` (2) when the target names nothing Airflow knows or its
        ledger cannot be read (the reason on stderr).
    """
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_clarity.quota",
        description="Show how much of a Clarity project's daily API quota Airflow has spent.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    usage = commands.add_parser("usage", help="print who spent which calls, and what is left")
    usage.add_argument("target", help="a clarity connection id, or a Clarity project id")
    args = parser.parse_args(argv)

    # Outside a task the Task SDK reads connections from env vars and secrets backends only;
    # this makes it read the metadata DB too, as the scheduler and the airflow CLI do.
    os.environ.setdefault("_AIRFLOW_PROCESS_CONTEXT", "server")
    from airflow_provider_clarity.quota.context import pool_fault

    try:
        ledger, source = ledger_for(args.target)
        status = ledger.status()
    except (ClarityError, ValueError) as err:
        emit(f"Error: {err}", sys.stderr)
        return EXIT_UNKNOWN
    if fault := pool_fault():
        emit(f"!! {fault}")
    emit(usage_text(shown(status)))
    emit(f"(resolved {args.target!r} as {source})")
    if source in _STORED_SOURCES:
        emit(
            f"Note: no clarity connection Airflow can list names project {ledger.project_id!r}, "
            "so these are the settings the last task stored; an export counts with its own "
            "connection's. For those, run `usage <conn_id>`."
        )
    return 0
