"""The operator's arguments, checked when the DAG file is parsed.

Refuse at parse time what would certainly fail at run time, so the user sees a
broken DAG at once instead of a failed task at the first run. Anything lazy (a template,
an XComArg) is left for ``execute``, which checks it once rendered.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import ObjectStoragePath

# What Airflow's own templater treats as resolved at run time (XComArg, dag.param...).
from airflow.sdk.definitions._internal.mixins import ResolveMixin

from airflow_provider_clarity.exceptions import ClarityRequestError
from airflow_provider_clarity.request import check_dimensions, parse_num_of_days
from airflow_provider_clarity.utils.storage import refuse_folder_name


def refuse_bad_literals(task_id: str, num_of_days: Any, dimensions: Any) -> None:
    """Refuse a bad literal ``num_of_days`` or dimension of task ``task_id``.

    :raises ClarityRequestError: naming the task and what is wrong.
    """
    try:
        if is_literal(num_of_days):
            parse_num_of_days(num_of_days)
        if is_literal(dimensions):
            check_dimensions(dimensions)
    except ClarityRequestError as exc:
        raise ClarityRequestError(f"Task '{task_id}': {exc}") from None


def absolute_or_templated(
    destination: str | ObjectStoragePath | None,
) -> str | ObjectStoragePath | None:
    """Refuse a fixed relative or folder path at parse time: no worker could use it."""
    text = destination if isinstance(destination, str) else ""
    if "{{" not in text:
        refuse_folder_name(text, what="destination")
    if text and "{{" not in text and "://" not in text and not text.startswith("/"):
        raise ValueError(
            f"destination {text!r} is a relative path; give an absolute one such as "
            f"'file:///data/clarity/os.parquet'."
        )
    return destination


def is_literal(value: Any) -> bool:
    """True for a value fixed in the DAG file: not a template, XComArg or other lazy value.

    Anything that is not lazy counts as literal, so a value of the wrong type (a float, a
    dict, ``[None]``, bytes...) is refused at parse time by the same checks as at run time.
    """
    if isinstance(value, str):
        return not any(marker in value for marker in ("{{", "{%", "{#"))
    if isinstance(value, ResolveMixin):  # XComArg and friends: resolved at run time.
        return False
    if isinstance(value, list | tuple):
        return all(is_literal(item) for item in value)
    return True


def choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}.")
    return value


def hours(delta: timedelta) -> str:
    """A duration in whole hours for messages: ``26 h``."""
    return f"{delta.total_seconds() / 3600:.0f} h"
