"""The clarity connections Airflow can list, and the project and quota settings each names.

What the exports will do: an export counts with its connection's ``QuotaSettings``, not with
the settings the last task stored in the ledger document. The quota page and the ``usage``
command read them here, offline (no call), from the two places Airflow can enumerate: the
metadata DB (``conn_type`` ``clarity``) and ``AIRFLOW_CONN_*`` environment variables (which
win over the DB for the same id, as in Airflow). A secrets backend cannot be listed; a
connection there is found by its id (``usage <conn_id>``) or through a scheduled export.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from airflow_provider_clarity.connection.settings import QuotaSettings
from airflow_provider_clarity.connection.token import clean_token, inspect_token

log = logging.getLogger(__name__)

CONN_TYPE = "clarity"
_ENV_PREFIX = "AIRFLOW_CONN_"


@dataclass(frozen=True)
class KnownConnection:
    """A clarity connection; ``settings`` is ``None`` when its extras do not parse (``problem``)."""

    conn_id: str
    settings: QuotaSettings | None
    problem: str | None = None


@dataclass(frozen=True)
class ProjectSettings:
    """The settings exports of one project count with, and the connections that say so.

    When connections of the same project disagree, the strictest (fewest calls for Airflow)
    is kept and ``disagree`` is set: each export counts with its own, so the page shows the
    one that runs out first.
    """

    settings: QuotaSettings
    conn_ids: tuple[str, ...]
    disagree: bool = False

    def describe(self) -> str:
        """``connection 'a'``, or which of several connections the settings come from."""
        if len(self.conn_ids) == 1:
            return f"connection {self.conn_ids[0]!r}"
        names = ", ".join(repr(c) for c in self.conn_ids)
        if not self.disagree:
            return f"connections {names}"
        return f"connections {names}, which disagree: the strictest, {self.conn_ids[0]!r}'s"


def settings_of(conn_id: str, extras: dict[str, Any], password: Any) -> QuotaSettings:
    """A connection's quota settings as the hook reads them (``ClarityHook.quota_settings``):
    without a ``project_id`` extra, the project the token names, else the connection id.

    :raises ClarityRequestError: an extra that does not parse.
    """
    subject = None
    if not extras.get("project_id") and not extras.get(f"extra__{CONN_TYPE}__project_id"):
        token = clean_token(password).token
        subject = inspect_token(token).subject if token else None
    return QuotaSettings.from_extras(extras, conn_id=conn_id, default_project=subject)


def _known(conn_id: str, extras: Any, password: Any) -> KnownConnection:
    try:
        extras = extras if isinstance(extras, dict) else {}
        return KnownConnection(conn_id, settings_of(conn_id, extras, password))
    except Exception as err:  # a bad extra: say so, keep listing the others
        return KnownConnection(conn_id, None, f"{type(err).__name__}: {err}")


def _from_env() -> dict[str, KnownConnection]:
    from airflow.models.connection import Connection

    found = {}
    for name, value in os.environ.items():
        if not name.startswith(_ENV_PREFIX) or not value:
            continue
        conn_id = name[len(_ENV_PREFIX) :].lower()
        try:
            if value.lstrip().startswith("{"):
                connection = Connection.from_json(value, conn_id=conn_id)
            else:
                connection = Connection(conn_id=conn_id, uri=value)
        except Exception:  # not a connection this code can read: Airflow will say so
            log.debug("%s is not a readable connection", name, exc_info=True)
            continue
        if connection.conn_type == CONN_TYPE:
            found[conn_id] = _known(conn_id, connection.extra_dejson, connection.password)
    return found


def _from_db(session: Any = None) -> dict[str, KnownConnection]:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    def read(session: Any) -> dict[str, KnownConnection]:
        rows = session.scalars(select(Connection).where(Connection.conn_type == CONN_TYPE))
        return {row.conn_id: _known(row.conn_id, row.extra_dejson, row.password) for row in rows}

    if session is not None:
        return read(session)
    with create_session() as own:
        return read(own)


def clarity_connections(*, session: Any = None) -> list[KnownConnection]:
    """Every clarity connection in ``AIRFLOW_CONN_*`` variables and the metadata DB, by id.

    Outside a task only (the DB is read through the ORM); a DB that cannot be read lists none.
    """
    found: dict[str, KnownConnection] = {}
    try:
        found.update(_from_db(session))
    except Exception:  # no metadata DB here: the environment's connections still count
        log.debug("the metadata DB's connections cannot be read", exc_info=True)
    found.update(_from_env())
    return [found[conn_id] for conn_id in sorted(found)]


def by_project(connections: Iterable[KnownConnection]) -> dict[str, ProjectSettings]:
    """The settings each project's exports count with, from the connections that name it."""
    grouped: dict[str, list[KnownConnection]] = {}
    for known in connections:
        if known.settings is not None:
            grouped.setdefault(known.settings.project_id, []).append(known)
    projects = {}
    for project_id, found in grouped.items():
        # The strictest first; equal ones by id, so the choice is stable.
        found.sort(key=lambda k: (k.settings.capacity if k.settings else 0, k.conn_id))
        first = found[0].settings
        assert first is not None
        disagree = any(
            k.settings is not None and k.settings.to_json() != first.to_json() for k in found
        )
        projects[project_id] = ProjectSettings(first, tuple(k.conn_id for k in found), disagree)
    return projects


def describe_known(connections: Iterable[KnownConnection]) -> str:
    """One line per connection: its id and project, or why its extras do not parse."""
    lines = []
    for known in connections:
        if known.settings is None:
            lines.append(f"  {known.conn_id}: extras do not parse ({known.problem})")
        else:
            lines.append(f"  {known.conn_id}: project {known.settings.project_id!r}")
    return "\n".join(lines) or "  (none)"
