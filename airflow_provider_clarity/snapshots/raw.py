"""The kept raw snapshot: Clarity's answer, unchanged, and where a task instance keeps it.

Private helpers of :mod:`airflow_provider_clarity.operators.export`; they may change
without notice. The envelope format (``clarity-raw/1``) is documented for users, since the
raw files are theirs to keep:

.. code-block:: json

    {"format": "clarity-raw/1", "request": {"numOfDays": "1", "dimension1": "OS"},
     "project_id": "...", "exported_at": "2025-01-01T06:00:03+00:00", "fallback": false,
     "status": 200, "host": "https://www.clarity.ms",
     "response": [{"metricName": "Traffic", "information": [...]}]}

``response`` is the body exactly as Clarity sent it (parsed JSON), so it can be normalised
again later with any version of :mod:`airflow_provider_clarity.normalize`. An answer that
is not Clarity's JSON (an error status, an HTML page, a cut-off body) is kept too, with
``response: null`` and its text in ``body`` (scrubbed of the token); ``status`` and
``host`` were added later and default to 200 and "unknown" for older files.

A kept answer is reused by a retry or re-run that asks the same request of the same host
for the same project, unless Clarity refused it before counting it (401, 403), refused it
for the quota (429) or failed (5xx): those say nothing about the data and a new call is
the only way forward.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from airflow.sdk import ObjectStoragePath

from airflow_provider_clarity.exceptions import ClarityError, ClarityRequestError
from airflow_provider_clarity.hooks._transport import ClarityAnswer
from airflow_provider_clarity.quota import caller_label
from airflow_provider_clarity.quota.store import VariableLedgerStore
from airflow_provider_clarity.utils.storage import (
    is_local,
    read_before_call,
    read_bytes_or_none,
    require_writable,
    resolve_path,
    write_atomic,
)
from airflow_provider_clarity.version_compat import HAS_TASK_STATE_STORE

log = logging.getLogger(__name__)

FORMAT = "clarity-raw/1"
STATE_STORE_KEY = "clarity_raw_snapshot"
#: Prefix of the Airflow Variables that keep raw answers where there is no task state store.
RAW_VARIABLE_PREFIX = "clarity_raw__"


@dataclass(frozen=True)
class RawSnapshot:
    """One Clarity answer and what was asked for it."""

    request: dict[str, str]
    project_id: str
    exported_at: datetime
    response: Any
    fallback: bool = False
    status: int = 200
    body: str | None = None
    host: str | None = None

    @classmethod
    def from_answer(
        cls,
        request: dict[str, str],
        project_id: str,
        exported_at: datetime,
        answer: ClarityAnswer,
    ) -> RawSnapshot:
        """Keep a hook ``ClarityAnswer`` (its body is already scrubbed when not Clarity JSON)."""
        body = None if answer.payload is not None else answer.body.decode("utf-8", "replace")
        return cls(
            request=dict(request),
            project_id=project_id,
            exported_at=exported_at,
            response=answer.payload,
            status=answer.status,
            body=body,
            host=answer.host,
        )

    def to_answer(self) -> ClarityAnswer:
        """The kept answer as the hook's ``ClarityAnswer``, to interpret it again."""
        body = (self.body or "").encode("utf-8")
        return ClarityAnswer(self.status, body, self.response, self.host or "unknown")

    @property
    def reusable(self) -> bool:
        """Whether a re-run may read this answer instead of calling (see the module docs)."""
        return self.status not in (401, 403, 429) and self.status < 500

    def to_json(self) -> dict[str, Any]:
        """The envelope as a JSON-ready dict."""
        return {
            "format": FORMAT,
            "request": dict(self.request),
            "project_id": self.project_id,
            "exported_at": self.exported_at.isoformat(),
            "fallback": self.fallback,
            "status": self.status,
            "host": self.host,
            "body": self.body,
            "response": self.response,
        }

    @classmethod
    def from_json(cls, envelope: Any) -> RawSnapshot | None:
        """Read an envelope back; ``None`` when it is not a ``clarity-raw/1`` envelope."""
        if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
            return None
        try:
            exported_at = datetime.fromisoformat(envelope["exported_at"])
            request = {str(k): str(v) for k, v in envelope["request"].items()}
            return cls(
                request=request,
                project_id=str(envelope["project_id"]),
                exported_at=exported_at,
                response=envelope["response"],
                fallback=bool(envelope.get("fallback", False)),
                status=int(envelope.get("status", 200)),
                body=None if envelope.get("body") is None else str(envelope["body"]),
                host=None if envelope.get("host") is None else str(envelope["host"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None

    def matches(self, request: dict[str, str], project_id: str, host: str | None = None) -> bool:
        """True when this snapshot answers exactly ``request`` for ``project_id`` at ``host``
        (a snapshot from before hosts were kept matches any host)."""
        same_host = host is None or self.host is None or self.host == host
        return self.request == request and self.project_id == project_id and same_host


class SnapshotStore(Protocol):
    """Where one task instance keeps its raw snapshot across retries and re-runs."""

    location: str

    def load(self) -> RawSnapshot | None: ...

    def save(self, snapshot: RawSnapshot) -> None: ...


class PathSnapshotStore:
    """A JSON file on any ``ObjectStoragePath`` (next to the output, or ``raw_location``)."""

    def __init__(self, path: ObjectStoragePath) -> None:
        self.path = path
        self.location = str(path)
        self._probed: tuple[bytes | None] | None = None

    def probe(self, *, what: str) -> None:
        """Read the location once before any call, so bad credentials or a missing bucket
        fail the task while nothing is spent (``load`` then reuses what was read).

        :raises ClarityRequestError: the location cannot be read.
        """
        self._probed = (read_before_call(self.path, what=what),)

    def load(self) -> RawSnapshot | None:
        if self._probed is not None:
            (data,), self._probed = self._probed, None
        else:
            data = read_bytes_or_none(self.path)
        if data is None:
            return None
        try:
            envelope = json.loads(data)
        except ValueError:
            envelope = None
        snapshot = RawSnapshot.from_json(envelope)
        if snapshot is None:
            log.warning(
                "%s is not a %s raw snapshot; ignoring it and fetching again.",
                self.location,
                FORMAT,
            )
        return snapshot

    def save(self, snapshot: RawSnapshot) -> None:
        body = json.dumps(snapshot.to_json(), ensure_ascii=False, separators=(",", ":"))
        write_atomic(self.path, body.encode("utf-8"))


class TaskStateSnapshotStore:
    """Airflow 3.3's task state store: per task instance, kept across retries and re-runs.

    Rows live in the metadata database until ``[state_store] default_retention_days``
    (30 by default), or a custom ``[workers] state_store_backend`` if one is configured.
    """

    def __init__(self, accessor: Any, *, task_label: str) -> None:
        self._accessor = accessor
        self.location = f"the task state store of {task_label} (key '{STATE_STORE_KEY}')"

    def load(self) -> RawSnapshot | None:
        return RawSnapshot.from_json(self._accessor.get(STATE_STORE_KEY))

    def save(self, snapshot: RawSnapshot) -> None:
        self._accessor.set(STATE_STORE_KEY, snapshot.to_json())


class VariableSnapshotStore:
    """Airflow 3.1 and 3.2 have no task state store: an Airflow Variable per task instance.

    Variables live in the metadata database (or the secrets backend's writable part), every
    worker reads them through the Execution API, and a retry or a cleared re-run of the same
    task instance finds the answer by its key (``raw_variable_key``). They are not pruned:
    delete ``clarity_raw__*`` Variables you no longer need, or set ``raw_location``. On Airflow
    3.3 the task state store is used instead, with its own retention.
    """

    def __init__(self, ti: Any, *, task_label: str) -> None:
        key = raw_variable_key(ti)
        self._variable = VariableLedgerStore(
            key,
            description=(
                f"Clarity's raw answer for {task_label}, kept so a retry or re-run reuses it "
                f"instead of spending a call (airflow-provider-clarity). Safe to delete once "
                f"the task succeeded and nobody will re-run it."
            ),
        )
        self.location = f"the Airflow Variable {key!r} ({task_label})"

    def load(self) -> RawSnapshot | None:
        try:
            envelope = self._variable.load()
        except ClarityError:  # not JSON: not ours to trust, so fetch again (as for a file)
            envelope = None
        snapshot = RawSnapshot.from_json(envelope)
        if envelope is not None and snapshot is None:
            log.warning("%s is not a %s raw snapshot; ignoring it.", self.location, FORMAT)
        return snapshot

    def save(self, snapshot: RawSnapshot) -> None:
        self._variable.save(snapshot.to_json())


def raw_variable_key(ti: Any) -> str:
    """The Variable that keeps ``ti``'s raw answer: ``clarity_raw__<dag_id>__<digest>``.

    The digest (of dag, run, task and map index) keeps it unique and within Airflow's 250
    characters whatever the run id holds; the DAG id, cut to 150 characters, keeps it findable
    in Admin > Variables.
    """
    map_index = getattr(ti, "map_index", -1)
    identity = "\n".join(str(part) for part in (ti.dag_id, ti.run_id, ti.task_id, map_index))
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32]
    return f"{RAW_VARIABLE_PREFIX}{str(ti.dag_id)[:150]}__{digest}"


class UnkeptSnapshotStore:
    """No durable place is available: nothing is kept (the operator warns once about it)."""

    location = "nowhere (no task state store in this context and no raw_location)"

    def load(self) -> RawSnapshot | None:
        return None

    def save(self, snapshot: RawSnapshot) -> None:
        """Keep nothing; a retry will have to call Clarity again."""


def store_for_task(
    context: Any,
    *,
    raw_location: str | ObjectStoragePath | None,
    destination: ObjectStoragePath | None,
) -> SnapshotStore:
    """Where the task instance in ``context`` keeps its raw snapshot, first match wins.

    1. ``raw_location``: a ``.json`` file, or a folder where the file is named
       ``<dag_id>/<run_id>/<task_id>[.<map_index>].raw.json``;
    2. beside ``destination``: ``.../os.parquet`` keeps ``.../os.raw.json``. The user
       already chose that storage for the data, it outlives Airflow's metadata, and a
       re-run finds it by name;
    3. Airflow 3.3's task state store (key ``clarity_raw_snapshot``): scoped to the task
       instance, so every try and re-run sees it, on real workers and under ``dag.test()``.
       XCom would not do: it is cleared when a task instance is retried or cleared, exactly
       when the snapshot is needed;
    4. on Airflow 3.1 and 3.2, which have no task state store, an Airflow Variable per task
       instance (``VariableSnapshotStore``), durable and readable from every worker;
    5. else nowhere (``UnkeptSnapshotStore``): only outside a task instance.

    A file location is read once here, before any call: unreachable storage (credentials,
    a missing bucket) fails the task while nothing is spent, even with ``force_refresh``.

    :raises ClarityRequestError: ``raw_location`` cannot be resolved, read or written, or
        collides with ``destination``.
    """
    if raw_location is not None:
        location = resolve_path(raw_location, what="raw_location", folder_ok=True)
        if not location.name.endswith(".json") or str(raw_location).strip().endswith("/"):
            location = location / _raw_file_name(context["ti"])
        if destination is not None:
            _refuse_collision(location, destination)
        require_writable(location, what="raw_location")
        store = PathSnapshotStore(location)
        store.probe(what="raw_location")
        return store
    if destination is not None:
        store = PathSnapshotStore(destination.with_name(f"{destination.stem}.raw.json"))
        store.probe(what="destination")
        return store
    accessor = context.get("task_state_store")
    if accessor is not None:
        return TaskStateSnapshotStore(accessor, task_label=caller_label(context["ti"]))
    if not HAS_TASK_STATE_STORE and context.get("ti") is not None:
        return VariableSnapshotStore(context["ti"], task_label=caller_label(context["ti"]))
    return UnkeptSnapshotStore()


def _refuse_collision(raw: ObjectStoragePath, destination: ObjectStoragePath) -> None:
    """The raw file must neither be the output file nor sit inside it (as if it were a folder)."""
    raw_text, output = str(raw), str(destination)
    if raw_text == output or raw_text.startswith(f"{output}/"):
        raise ClarityRequestError(
            f"raw_location puts the raw snapshot at {raw_text!r}, which "
            f"{'is' if raw_text == output else 'is inside'} the destination {output!r}: one "
            f"would overwrite or block the other. Give raw_location a folder or .json file "
            f"of its own, or leave it out to keep the raw snapshot beside the destination. No "
            f"Clarity call was made."
        )


def _raw_file_name(ti: Any) -> str:
    """A raw snapshot file name unique to the task instance, for a ``raw_location`` folder."""
    map_index = getattr(ti, "map_index", -1)
    suffix = "" if map_index in (None, -1) else f".{map_index}"
    return f"{ti.dag_id}/{ti.run_id}/{ti.task_id}{suffix}.raw.json"


# Executors that run every try of a task on the one host that ran the first.
_ONE_HOST_EXECUTORS = ("LocalExecutor", "SequentialExecutor", "DebugExecutor")


def worker_local_note(store: SnapshotStore) -> str | None:
    """A warning when the raw snapshot sits on a worker's own disk and the executor may run a
    retry on another host, which would not find it and would spend a new call; else ``None``."""
    path = getattr(store, "path", None)
    if path is None or not is_local(path):
        return None
    from airflow_provider_clarity.version_compat import conf

    executor = str(conf.get("core", "executor", fallback="LocalExecutor"))
    if all(name.split(".")[-1] in _ONE_HOST_EXECUTORS for name in executor.split(",")):
        return None
    return (
        f"The raw snapshot is kept at {store.location}, on this worker's own disk, but the "
        f"executor ({executor}) can run a retry on another host, which would not find it and "
        f"would spend a new Clarity call. Keep it on object storage (an s3:// or gs:// "
        f"destination, or raw_location) or on a folder every worker shares."
    )
