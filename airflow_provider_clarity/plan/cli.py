"""The ``plan`` command: load a DAG folder, print its plan, exit 1 when over budget."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from airflow_provider_clarity.plan.budget import plan_dags
from airflow_provider_clarity.plan.render import render
from airflow_provider_clarity.plan.rows import kept_rows
from airflow_provider_clarity.quota.context import pool_fault
from airflow_provider_clarity.version_compat import dag_bag


def check(dags_folder: str | os.PathLike[str] | None = None) -> tuple[int, str]:
    """Load ``dags_folder`` (Airflow's ``[core] dags_folder`` by default) and plan it, with
    the row counts of the answers each project's shared-snapshot index lists.

    Returns the exit status (0 fits, 1 over budget or a pool fault, 2 a DAG file failed to
    import) and the report. A pool fault (``quota.context.pool_fault``) comes first.
    """
    folder = None if dags_folder is None else str(dags_folder)
    bag = dag_bag(folder)
    if bag.import_errors:
        errors = "\n".join(
            f"  {path}: {error.strip().splitlines()[-1]}"
            for path, error in bag.import_errors.items()
        )
        return 2, f"DAG files that failed to import (fix them first):\n{errors}\n"
    plans, derives = plan_dags(bag.dags.values(), rows_of=kept_rows)
    status = 0 if all(p.fits for p in plans) else 1
    report = render(plans, derives)
    fault = pool_fault()
    if fault is not None:  # the budget means nothing if two calls can take the last one
        return 1, f"{fault}\n\n{report}"
    return status, report


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m airflow_provider_clarity.plan [DAGS_FOLDER]``."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_clarity.plan",
        description="Check, before the day starts, that your DAGs fit Clarity's daily quota.",
    )
    parser.add_argument("dags_folder", nargs="?", help="default: Airflow's [core] dags_folder")
    args = parser.parse_args(argv)
    # Read connections from the metadata DB too, as the airflow CLI does (see quota/cli.py).
    os.environ.setdefault("_AIRFLOW_PROCESS_CONTEXT", "server")
    status, report = check(args.dags_folder)
    (sys.stderr if status == 2 else sys.stdout).write(report)
    return status
