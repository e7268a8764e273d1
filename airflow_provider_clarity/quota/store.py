"""Where a ledger's JSON document is persisted: an Airflow Variable, or memory.

Load and save one document, nothing else; what the document means is
``records.py``'s business. ``ledger_key`` names the Variable of a project.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from typing import Any, Protocol

from airflow_provider_clarity.exceptions import ClarityLedgerError
from airflow_provider_clarity.quota.records import corrupt_message

VARIABLE_PREFIX = "clarity_quota__"

_SAFE_KEY = re.compile(r"[^A-Za-z0-9_.-]")
_MAX_KEY_LENGTH = 200  # Airflow allows 250; leave room for the prefix and a hash.


def ledger_key(project_id: str) -> str:
    """Return the Variable key holding ``project_id``'s ledger: ``clarity_quota__<project_id>``.

    Characters outside ``[A-Za-z0-9_.-]`` become ``_``, and then a short hash of the original
    id is appended, so two ids that differ only in such characters never share a key.
    """
    project_id = str(project_id)
    safe = _SAFE_KEY.sub("_", project_id)
    if safe != project_id or len(safe) > _MAX_KEY_LENGTH or not safe:
        digest = hashlib.sha256(project_id.encode()).hexdigest()[:8]
        safe = f"{safe[:_MAX_KEY_LENGTH]}_{digest}"
    return f"{VARIABLE_PREFIX}{safe}"


def in_task() -> bool:
    """Whether this process is a Task SDK task (or DAG-parsing/trigger) runner."""
    return hasattr(sys.modules.get("airflow.sdk.execution_time.task_runner"), "SUPERVISOR_COMMS")


class LedgerStore(Protocol):
    """Where a ledger's JSON document lives. ``load`` returns ``None`` when nothing is stored."""

    def load(self) -> dict[str, Any] | None: ...

    def save(self, data: dict[str, Any]) -> None: ...


class MemoryLedgerStore:
    """A ledger store in memory, for tests, dry runs and read-only views of a document.

    It keeps the document as JSON text, as a Variable does: ``load`` returns a fresh copy that
    the caller may change, at the cost of one ``json.loads`` (a deep copy is several times
    slower on a large document). ``data`` is the stored document, decoded on each access.
    """

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data = data

    @property
    def data(self) -> dict[str, Any] | None:
        return self.load()

    @data.setter
    def data(self, value: dict[str, Any] | None) -> None:
        self._text = None if value is None else json.dumps(value)

    def load(self) -> dict[str, Any] | None:
        return None if self._text is None else json.loads(self._text)

    def save(self, data: dict[str, Any]) -> None:
        self.data = data


class DocumentView:
    """A ledger document already in memory (the quota page's, a test's), read where it is.

    ``load`` returns the document itself, uncopied: for readers that never change what they
    load, as the ledger does (``records.read_document`` builds new objects). ``save`` keeps
    the new document and leaves the one it was given untouched.
    """

    def __init__(self, data: dict[str, Any] | None) -> None:
        self.data = data

    def load(self) -> dict[str, Any] | None:
        return self.data

    def save(self, data: dict[str, Any]) -> None:
        self.data = data


class VariableLedgerStore:
    """The default store: one Airflow Variable holding the ledger as JSON.

    Inside a task it goes through ``airflow.sdk.Variable`` (the Execution API). Outside a task
    ``airflow.sdk.Variable`` cannot see the metadata DB (``get`` silently returns the default),
    so this store then uses the core ``airflow.models.Variable``, which reads the secrets
    backends and the metadata DB, as the ``airflow variables`` CLI does.
    """

    def __init__(self, key: str, *, description: str | None = None) -> None:
        self.key = key
        self.description = description

    def load(self) -> dict[str, Any] | None:
        if in_task():
            from airflow.sdk import SecretCache, Variable

            # With [secrets] use_cache on, a cached copy could be minutes old: never count from it.
            SecretCache.invalidate_variable(self.key)
            raw = Variable.get(self.key, default=None)
        else:
            from airflow.models.variable import Variable as CoreVariable

            raw = CoreVariable.get(self.key, default_var=None)
        if raw is None:
            return None
        try:
            data = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError as err:
            raise ClarityLedgerError(corrupt_message(self.key, "it is not valid JSON")) from err
        if not isinstance(data, dict):
            raise ClarityLedgerError(corrupt_message(self.key, "it is not a JSON object"))
        return data

    def probe(self) -> None:
        """Raise unless this process can write the Variable: outside a task, reach the
        metadata DB's variable table (a read alone cannot tell: the core ``Variable.get``
        answers "no such Variable" when the table is missing). Inside a task, a no-op."""
        if in_task():
            return
        from airflow.models.variable import Variable as CoreVariable
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            session.execute(select(CoreVariable.id).limit(1)).all()

    def save(self, data: dict[str, Any]) -> None:
        if in_task():
            from airflow.sdk import Variable

            Variable.set(self.key, data, description=self.description, serialize_json=True)
        else:
            from airflow.models.variable import Variable as CoreVariable

            CoreVariable.set(self.key, data, description=self.description, serialize_json=True)
