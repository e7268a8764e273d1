"""The ``airflow clarity`` commands: ``usage`` (who spent a project's calls) and ``plan``.

Registered through the provider info's ``cli`` entry; the commands run the same code as
``python -m airflow_provider_clarity.quota usage`` and ``python -m airflow_provider_clarity.plan``.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.cli.cli_config import CLICommand


def usage(args: argparse.Namespace) -> None:
    """Print who spent which of a project's calls, and what is left."""
    from airflow_provider_clarity.quota import main

    status = main(["usage", args.target])
    if status:
        raise SystemExit(status)


def plan(args: argparse.Namespace) -> None:
    """Print each project's Clarity calls per day from the DAGs; exit 1 when over budget."""
    from airflow_provider_clarity.plan.cli import main

    status = main([args.dags_folder] if args.dags_folder else [])
    if status:
        raise SystemExit(status)


def get_clarity_cli_commands() -> list[CLICommand]:
    """The ``clarity`` command group, for Airflow's ProvidersManager."""
    from airflow.cli.cli_config import ActionCommand, Arg, GroupCommand

    target = Arg(("target",), help="a clarity connection id, or a Clarity project id")
    folder = Arg(("dags_folder",), nargs="?", help="default: Airflow's [core] dags_folder")
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
                ),
                ActionCommand(
                    name="plan",
                    help="Check that the DAGs' Clarity calls fit each project's daily quota",
                    func=plan,
                    args=(folder,),
                ),
            ],
        )
    ]
