"""The ``usage`` command: print who spent a project's calls, from a shell with DB access.

``python -m airflow_provider_clarity.quota usage <conn_id | project_id>``
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from airflow_provider_clarity.connection.settings import QuotaSettings
from airflow_provider_clarity.quota.ledger import QuotaLedger
from airflow_provider_clarity.quota.store import VariableLedgerStore, ledger_key


def ledger_for(target: str) -> tuple[QuotaLedger, str]:
    """The ledger for a connection id, else for a project id with its last stored settings.

    :raises ClarityRequestError: the connection exists but one of its extras does not parse.
    """
    from airflow_provider_clarity.version_compat import AirflowNotFoundException, BaseHook

    try:
        connection = BaseHook.get_connection(target)
    except AirflowNotFoundException:
        pass
    else:
        settings = QuotaSettings.from_extras(connection.extra_dejson, conn_id=target)
        return QuotaLedger.from_settings(settings), f"connection {target!r}"
    store = VariableLedgerStore(ledger_key(target))
    stored = QuotaSettings.from_stored(target, (store.load() or {}).get("settings"))
    source = "settings stored by the last task" if stored else "default settings"
    return QuotaLedger.from_settings(stored or QuotaSettings(target), store=store), (
        f"project id, {source}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m airflow_provider_clarity.quota usage <conn_id | project_id>``."""
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
    ledger, source = ledger_for(args.target)
    print(ledger.usage())
    print(f"(resolved {args.target!r} as {source})")
    return 0
