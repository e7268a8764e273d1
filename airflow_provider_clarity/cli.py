"""``airflow clarity usage <conn_id | project_id>``: the quota ledger's report in the airflow CLI.

Registered through the provider info's ``cli`` entry; the command runs the same code as
``python -m airflow_provider_clarity.quota usage``.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.cli.cli_config import CLICommand


def usage(args: argparse.Namespace) -> None:
    """Print who spent which of a project's calls, and what is left."""
    from airflow_provider_clarity.quota import main

    main(["usage", args.target])


def get_clarity_cli_commands() -> list[CLICommand]:
    """The ``clarity`` command group, for Airflow's ProvidersManager."""
    from airflow.cli.cli_config import ActionCommand, Arg, GroupCommand

    target = Arg(("target",), help="a clarity connection id, or a Clarity project id")
    return [
        GroupCommand(
            name="clarity",
            help="Microsoft Clarity provider commands",
            subcommands=[
                ActionCommand(
                    name="usage",
                    help="Show how much of a Clarity project's daily API quota Airflow has spent",
                    func=usage,
                    args=(target,),
                )
            ],
        )
    ]
