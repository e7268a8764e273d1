"""Shared snapshots: one Clarity answer reused by every task that asks the same thing.

Clarity answers one request per call and allows 10 calls per project per day. Two DAGs that
want the ``Device`` breakdown on the same morning would spend two calls for nearly the same
data (a trailing 24 h aggregate an hour later shares 23 of its 24 hours). So every export
that keeps a usable answer where other workers can read it lists it in a deployment-wide
index, and an export asking the same request of the same project and host less than
``max_snapshot_age`` later copies that raw answer instead of calling.

The index is one Airflow Variable per project, ``clarity_snapshots__<project_id>``, a JSON
document beside the quota ledger's ``clarity_quota__<project_id>`` and written through the
same ``VariableLedgerStore`` (the Task SDK ``Variable`` inside a task). Entries older than
48 h are pruned, and at most ``MAX_ENTRIES`` are kept. Like the ledger, it has no
compare-and-set: its writes take the same kind of lock as the ledger's (``quota/lock.py``),
and a lost update (hosts that share no lock dir) only costs a call later, never a wrong answer.

Only answers that carry data are shared (HTTP 2xx with Clarity's JSON, not the no-dimension
fallback), and only from a raw location other tasks can read: object storage (``s3://``...)
is read from any worker; ``file://`` only on the same host (or a disk every worker mounts);
Airflow's task state store is scoped to one task instance and cannot be shared at all.
Each case is logged when it prevents reuse. A reused answer keeps its original
``exported_at``, so the window it covers stays truthful.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_provider_clarity.connection.settings import KEEP_AT_LEAST
from airflow_provider_clarity.exceptions import ClarityRequestError
from airflow_provider_clarity.quota import metrics
from airflow_provider_clarity.quota.context import caller_label
from airflow_provider_clarity.quota.lock import ledger_lock
from airflow_provider_clarity.quota.store import (
    VARIABLE_PREFIX,
    LedgerStore,
    VariableLedgerStore,
    ledger_key,
)
from airflow_provider_clarity.request import ClarityRequest
from airflow_provider_clarity.snapshots.raw import PathSnapshotStore, RawSnapshot, SnapshotStore
from airflow_provider_clarity.utils.numbers import whole_number
from airflow_provider_clarity.utils.storage import LOCAL_PROTOCOLS, resolve_path
from airflow_provider_clarity.windows.utc import utc_iso

log = logging.getLogger(__name__)

INDEX_PREFIX = "clarity_snapshots__"
#: Entries kept per project: 10 calls a day for the 48 h kept, with room to spare.
MAX_ENTRIES = 50
INDEX_VERSION = 1


def index_key(project_id: str) -> str:
    """The Variable holding ``project_id``'s index, named like its ledger's (``ledger_key``)."""
    return INDEX_PREFIX + ledger_key(project_id).removeprefix(VARIABLE_PREFIX)


def snapshot_age(value: Any) -> timedelta | None:
    """An operator's ``max_snapshot_age`` (seconds or a ``timedelta``); ``None`` keeps the
    connection's ``max_snapshot_age_seconds``.

    :raises ClarityRequestError: a negative or non-whole number of seconds.
    """
    if value is None or isinstance(value, timedelta):
        if value is not None and value < timedelta(0):
            raise ClarityRequestError(f"max_snapshot_age must be 0 or more, got {value!r}")
        return value
    seconds = whole_number(value)
    if seconds is None or seconds < 0:
        raise ClarityRequestError(
            f"max_snapshot_age must be a whole number of seconds >= 0 or a timedelta, got "
            f"{value!r}; 0 turns sharing off for this task."
        )
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class SharedSnapshot:
    """One index entry: what was asked, when Clarity answered, where the raw answer is."""

    request: dict[str, str]
    exported_at: datetime
    location: str
    clarity_host: str | None
    worker: str
    caller: str

    @property
    def on_worker_disk(self) -> bool:
        """Whether the raw file is on the disk of the worker that kept it (``file://``)."""
        scheme, found, _ = self.location.partition("://")
        return not found or scheme in LOCAL_PROTOCOLS

    def to_json(self) -> dict[str, Any]:
        return {
            "request": dict(self.request),
            "exported_at": utc_iso(self.exported_at),
            "location": self.location,
            "clarity_host": self.clarity_host,
            "worker": self.worker,
            "caller": self.caller,
        }

    @classmethod
    def from_json(cls, entry: Any) -> SharedSnapshot | None:
        """An entry read back; ``None`` for anything that is not one (it is then dropped)."""
        try:
            return cls(
                request={str(k): str(v) for k, v in entry["request"].items()},
                exported_at=datetime.fromisoformat(entry["exported_at"]).astimezone(UTC),
                location=str(entry["location"]),
                clarity_host=None
                if entry.get("clarity_host") is None
                else str(entry["clarity_host"]),
                worker=str(entry.get("worker", "")),
                caller=str(entry.get("caller", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


class SnapshotIndex:
    """A project's recent shareable snapshots, in a Variable (or any ``LedgerStore``)."""

    def __init__(self, project_id: str, *, store: LedgerStore | None = None) -> None:
        self.project_id = str(project_id)
        self.key = index_key(self.project_id)
        self.store = (
            store
            if store is not None
            else VariableLedgerStore(
                self.key,
                description=f"Recent Clarity snapshots of project {self.project_id} that other "
                "tasks may reuse (airflow-provider-clarity; safe to delete).",
            )
        )

    def entries(self) -> list[SharedSnapshot]:
        """Every readable entry, newest first."""
        document = self.store.load() or {}
        raw = document.get("snapshots") if isinstance(document, dict) else None
        found = [SharedSnapshot.from_json(e) for e in raw or [] if isinstance(e, dict)]
        return sorted((e for e in found if e), key=lambda e: e.exported_at, reverse=True)

    def find(
        self,
        request: dict[str, str],
        clarity_host: str | None,
        *,
        max_age: timedelta,
        now: datetime | None = None,
    ) -> list[SharedSnapshot]:
        """Entries answering ``request`` at ``clarity_host`` less than ``max_age`` ago."""
        now = now or datetime.now(UTC)
        return [
            e
            for e in self.entries()
            if e.request == request
            and (clarity_host is None or e.clarity_host in (None, clarity_host))
            and timedelta(0) <= now - e.exported_at < max_age
        ]

    def register(self, entry: SharedSnapshot, *, now: datetime | None = None) -> None:
        """Add ``entry`` (replacing any entry for the same location) and prune old ones."""
        now = now or datetime.now(UTC)
        with ledger_lock(index_key(self.project_id)):
            kept = [
                e
                for e in self.entries()
                if e.location != entry.location and now - e.exported_at < KEEP_AT_LEAST
            ]
            entries = sorted([entry, *kept], key=lambda e: e.exported_at, reverse=True)
            self.store.save(
                {
                    "version": INDEX_VERSION,
                    "project_id": self.project_id,
                    "snapshots": [e.to_json() for e in entries[:MAX_ENTRIES]],
                }
            )


def _shareable(snapshot: RawSnapshot) -> bool:
    """Only answers that carry data are worth another task's trust."""
    return 200 <= snapshot.status < 300 and snapshot.response is not None and not snapshot.fallback


class SnapshotSharing:
    """What one export task does with the index: look before calling, register after.

    :param max_age: how old a reused answer may be; 0 turns reuse off (the task still
        registers its own answers for others).
    :param force_refresh: the task must call; it does not look, but it registers.
    """

    def __init__(
        self,
        *,
        project_id: str,
        clarity_host: str | None,
        caller: str,
        store: SnapshotStore,
        max_age: timedelta,
        force_refresh: bool = False,
        index: SnapshotIndex | None = None,
        logger: logging.Logger | Any = log,
    ) -> None:
        self.project_id = project_id
        self.clarity_host = clarity_host
        self.caller = caller
        self.store = store
        self.max_age = max_age
        self.force_refresh = force_refresh
        self.index = index if index is not None else SnapshotIndex(project_id)
        self.log = logger
        self.worker = socket.gethostname()
        self.reused_from: str | None = None

    @classmethod
    def for_operator(cls, operator: Any, context: Any, store: SnapshotStore) -> SnapshotSharing:
        """The sharing of a ``ClarityExportOperator`` run: its hook's project and host, its
        ``max_snapshot_age`` (``None``: the connection's ``max_snapshot_age_seconds``) and
        ``force_refresh``, and its task instance as the caller."""
        settings = operator.hook.quota_settings
        max_age = operator.max_snapshot_age
        if max_age is None:
            max_age = timedelta(seconds=settings.max_snapshot_age_seconds)
        return cls(
            project_id=settings.project_id,
            clarity_host=operator.hook.base_url,
            caller=caller_label(context["ti"]),
            store=store,
            max_age=max_age,
            force_refresh=operator.force_refresh,
            logger=operator.log,
        )

    # ------------------------------------------------------------------ before the call

    def reuse(self, request: ClarityRequest) -> RawSnapshot | None:
        """Another task's recent answer to ``request``, copied into this task's store; else
        ``None`` (then the caller spends its call). Never raises for an unreadable index."""
        if self.force_refresh or self.max_age <= timedelta(0):
            return None
        params = request.params()
        try:
            candidates = self.index.find(params, self.clarity_host, max_age=self.max_age)
        except Exception as exc:
            self.log.warning(
                "Could not read the shared snapshot index %s (%s); calling Clarity.",
                self.index.key,
                exc,
            )
            return None
        for entry in candidates:
            if entry.location == self.store.location:
                continue  # this task's own file: the kept-snapshot check already read it
            snapshot = self._read(entry, params)
            if snapshot is None:
                continue
            self._keep_copy(snapshot, entry)
            self.reused_from = entry.location
            age = datetime.now(UTC) - snapshot.exported_at
            self.log.info(
                "Reusing the snapshot %s kept at %s for %s (exported_at %s, %.0f min ago, less "
                "than max_snapshot_age %.0f min); no Clarity call spent. Set "
                "max_snapshot_age=0 or force_refresh=True to call instead.",
                entry.caller or "another task",
                entry.location,
                request.describe(),
                utc_iso(snapshot.exported_at),
                age.total_seconds() / 60,
                self.max_age.total_seconds() / 60,
            )
            metrics.snapshot_reused(self.project_id, "shared")
            return snapshot
        return None

    def _read(self, entry: SharedSnapshot, params: dict[str, str]) -> RawSnapshot | None:
        try:
            snapshot = PathSnapshotStore(
                resolve_path(entry.location, what="shared snapshot")
            ).load()
        except Exception as exc:
            snapshot, problem = None, f"could not be read ({exc})"
        else:
            problem = "is gone"
        if snapshot is None:
            if entry.on_worker_disk and entry.worker != self.worker:
                problem = (
                    f"is on the local disk of worker {entry.worker!r} (file://), which this "
                    f"worker ({self.worker!r}) cannot read. Keep raw snapshots on object storage "
                    "(raw_location='s3://...') to share them across workers"
                )
            self.log.info(
                "Cannot reuse the snapshot %s kept at %s: it %s.",
                entry.caller,
                entry.location,
                problem,
            )
            return None
        fresh = datetime.now(UTC) - snapshot.exported_at < self.max_age
        if not (
            snapshot.matches(params, self.project_id, self.clarity_host)
            and fresh
            and _shareable(snapshot)
        ):
            return None  # the file was overwritten since it was listed
        return snapshot

    def _keep_copy(self, snapshot: RawSnapshot, entry: SharedSnapshot) -> None:
        """Keep the reused answer as this task's own, so a retry and a downstream
        ``ClarityDeriveOperator`` find it where they look."""
        if self.store.location == entry.location:
            return
        try:
            self.store.save(snapshot)
        except Exception:
            self.log.error(
                "Could not keep a copy of the shared snapshot at %s (see the error "
                "below); fix the location and run the task again.",
                self.store.location,
            )
            raise

    # ------------------------------------------------------------------ after the call

    def offer(self, snapshot: RawSnapshot) -> RawSnapshot:
        """List this task's freshly kept answer for other tasks, when it can be shared.

        Returns ``snapshot`` unchanged. Never raises: sharing only ever saves calls.
        """
        if not _shareable(snapshot):
            return snapshot
        if not isinstance(self.store, PathSnapshotStore):
            self.log.info(
                "This answer is kept in %s, which only this task instance can read, so other "
                "tasks asking the same cannot reuse it. Set raw_location (object storage, or a "
                "folder every worker can read) or destination to share it.",
                self.store.location,
            )
            return snapshot
        entry = SharedSnapshot(
            request=dict(snapshot.request),
            exported_at=snapshot.exported_at,
            location=self.store.location,
            clarity_host=snapshot.host,
            worker=self.worker,
            caller=self.caller,
        )
        try:
            self.index.register(entry)
        except Exception as exc:
            self.log.warning(
                "Could not list the snapshot in %s (%s); other tasks will call Clarity themselves.",
                self.index.key,
                exc,
            )
            return snapshot
        if entry.on_worker_disk:
            self.log.info(
                "Shared this answer for %s from %s: file:// is on this worker's disk "
                "(%s), so only tasks on this host (or a shared mount) can reuse it.",
                ", ".join(self._dims(snapshot)),
                entry.location,
                self.worker,
            )
        return snapshot

    @staticmethod
    def _dims(snapshot: RawSnapshot) -> list[str]:
        return ClarityRequest.wire_dimensions(snapshot.request) or ["no dimension"]
