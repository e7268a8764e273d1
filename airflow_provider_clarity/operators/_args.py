"""The export operator's argument checks, made when a DAG file is parsed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import ObjectStoragePath

__all__ = ["absolute_or_templated", "choice", "hours", "is_literal"]


def absolute_or_templated(
    destination: str | ObjectStoragePath | None,
) -> str | ObjectStoragePath | None:
    """Refuse a fixed relative path at parse time: it would land wherever a worker runs."""
    text = destination if isinstance(destination, str) else ""
    if text and "{{" not in text and "://" not in text and not text.startswith("/"):
        raise ValueError(
            f"destination {text!r} is a relative path; give an absolute one such as "
            f"'file:///data/clarity/os.parquet'."
        )
    return destination


def is_literal(value: Any) -> bool:
    """True for a value fixed in the DAG file: not a template, XComArg or other lazy value."""
    if isinstance(value, str):
        return "{{" not in value and "{%" not in value
    if isinstance(value, int):
        return True
    if isinstance(value, list | tuple):
        return all(isinstance(item, str) and is_literal(item) for item in value)
    return value is None


def choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}.")
    return value


def hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.0f} h"
