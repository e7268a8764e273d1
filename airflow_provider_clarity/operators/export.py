"""ClarityExportOperator: one Clarity snapshot, kept raw, landed as a typed table.

The flow of one task instance, each step refusing before anything is spent when it can:

1. validate the request and the destination's filesystem (no call yet);
2. reuse the raw snapshot this task instance already kept, if any (no call);
3. refuse a run whose data Clarity can no longer serve (catch-up, backfill, late retry);
4. ask the quota ledger for a call; wait for the reset, skip or fail when none is left;
5. call Clarity and write its answer, unchanged, to durable storage before anything else;
6. normalise it and return it to XCom, or write it to object storage and emit an asset event.

Where the raw snapshot is kept, and why there: ``snapshots.raw.store_for_task``. Which
answers a re-run may reuse: ``snapshots.raw.RawSnapshot.reusable``.

The operator is thin: it validates, asks the hook, keeps the answer, hands the rows on;
each of those steps lives in the module that owns it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk import Asset, AssetAlias, BaseOperator, ObjectStoragePath

# What Airflow's own templater treats as resolved at run time (XComArg, dag.param...).
from airflow.sdk.definitions._internal.contextmanager import DagContext

from airflow_provider_clarity import normalize
from airflow_provider_clarity.api_facts import ROW_CAP
from airflow_provider_clarity.exceptions import (
    ClarityDimensionFallbackError,
    ClarityError,
    ClarityLockTimeoutError,
    ClarityQuotaExceededError,
    ClarityRequestError,
    QuotaSource,
)
from airflow_provider_clarity.hooks.clarity import ClarityHook
from airflow_provider_clarity.operators._arguments import (
    absolute_or_templated,
    choice,
    hours,
    refuse_bad_literals,
)
from airflow_provider_clarity.outputs.formats import OUTPUT_FORMATS, encode
from airflow_provider_clarity.outputs.lineage import (
    emit_asset_event,
    openlineage_facets,
    outlet_for,
)
from airflow_provider_clarity.quota import (
    DEFAULT_POOL,
    QuotaLedger,
    caller_label,
    ledger_key,
    warn_if_unsafe_pool,
)
from airflow_provider_clarity.quota.lock import project_call_lock
from airflow_provider_clarity.request import ClarityRequest
from airflow_provider_clarity.snapshots.index import SnapshotSharing, snapshot_age
from airflow_provider_clarity.snapshots.raw import (
    RawSnapshot,
    SnapshotStore,
    UnkeptSnapshotStore,
    store_for_task,
    worker_local_note,
)
from airflow_provider_clarity.snapshots.reuse import kept_snapshot
from airflow_provider_clarity.utils.storage import (
    asset_uri,
    require_writable,
    resolve_path,
    write_atomic,
)
from airflow_provider_clarity.version_compat import (
    AirflowRescheduleException,
    AirflowSkipException,
    conf,
)
from airflow_provider_clarity.windows import clock, overlap
from airflow_provider_clarity.windows.partition import add_to_context
from airflow_provider_clarity.windows.utc import utc_iso, utc_text

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

__all__ = ["PARTITION_DAY", "ClarityExportOperator", "ExportSummary"]

PARTITION_DAY = "{{ clarity_day }}"
# The date documented destinations are partitioned by: the day the snapshot covers
# (partition.py has the rule). The operator adds it to the template context for every run
# type, runs without a logical date too, where ds is undefined. Docs and examples write
# this expression (tests/test_example_dags.py checks it); docs/windows.md explains it.

QUOTA_MODES = ("wait", "skip", "fail")
STALE_MODES = ("skip", "fail")
# No wait shorter than this: Airflow 3.3.2 fails a task queued again before the executor's
# event for its last exit arrives (apache/airflow#67287); that event was measured 0.01-0.9 s
# late on our Celery stack and 5-6 s at times elsewhere. The ledger wakes waiters in turn;
# those beyond the project's capacity wake _SPACING apart.
_MIN_WAIT = timedelta(seconds=30)
_SPACING = timedelta(seconds=30)


class ExportSummary(overlap.CoverageExtra):
    """What the operator returns to XCom when it wrote to a ``destination``.

    With the coverage keys: ``window_start``, ``window_end``, ``previous_window_end``,
    ``overlap_minutes`` and ``gap_minutes`` (``windows/overlap.py``).
    """

    path: str
    raw_path: str
    rows: int
    rows_per_metric: dict[str, int]
    exported_at: str
    num_of_days: int
    dimensions: list[str]
    possibly_truncated: list[str]
    calls_remaining: int | None
    reused_from: str | None  # another task's raw snapshot this one reused (snapshots/index.py)
    project_id: str


class ClarityExportOperator(BaseOperator):
    """Take one Clarity live-insights snapshot and land it as a typed, tidy table.

    Clarity serves only the last 24, 48 or 72 hours before the call, keeps no history and
    allows 10 calls per project per day. So this operator keeps Clarity's raw answer before
    anything else can fail, reuses it on retries and re-runs of the same task instance
    instead of calling again, refuses runs whose window has passed, and counts every call in
    the project's quota ledger.

    Without ``destination``, the rows (``airflow_provider_clarity.normalize.to_records``)
    are returned to XCom. With one, the table is written there in ``output_format`` and a
    small summary dict is returned; an asset event is emitted for the written file.

    The task runs in the pool ``clarity_api`` (1 slot), which serialises the quota ledger's
    updates. A DAG's ``default_args`` pool does not apply; pass ``pool=`` on the task to
    override it (see the quota guide for what that risks).

    :param clarity_conn_id: the Clarity connection (type ``clarity``). Templated.
    :param num_of_days: 1, 2 or 3: the trailing 24, 48 or 72 hours. Templated.
    :param dimensions: up to three of ``Browser, Device, Country, OS, Source, Medium,
        Campaign, Channel, URL``; a list or a comma-separated string. Templated.
    :param destination: where to write the table: a URI or ``ObjectStoragePath``, e.g.
        ``"file:///data/clarity/dt={{ clarity_day }}/os.parquet"`` or
        ``"s3://aws_default@bucket/clarity/dt={{ clarity_day }}/os.parquet"`` (the ``amazon``
        extra); ``{{ clarity_day }}`` is the day the snapshot covers. The raw snapshot is
        kept beside it as ``os.raw.json``. Templated.
    :param output_format: ``parquet`` (typed), ``csv``, ``jsonl`` (one object per line) or
        ``json`` (one array).
    :param raw_location: where to keep the raw snapshot instead: a ``.json`` file URI, or a
        folder under which the operator names the file after the task instance. Without it
        and without ``destination``, Airflow's task state store keeps it (on Airflow 3.1
        and 3.2, which have none, an Airflow Variable of the task instance). Templated.
    :param force_refresh: call Clarity even when a kept snapshot answers the same request.
    :param max_snapshot_age: reuse another task's answer to the same request younger than this
        (seconds or ``timedelta``; 0: never); default: the connection's, else 1 h.
    :param on_quota_exhausted: ``wait`` (defer, or reschedule, until the quota resets),
        ``skip`` or ``fail``. No call is spent in any of them.
    :param on_stale_window: ``skip`` or ``fail`` a run whose data Clarity can no longer serve.
    :param reserve: calls per day to leave unspent for others; overrides the connection's.
    :param deferrable: wait for the quota reset in the triggerer rather than by rescheduling.
    :param xcom_warn_rows: warn, recommending a ``destination``, above this many XCom rows.
    :param coverage_tolerance_minutes: warn when this snapshot's window overlaps the previous
        snapshot of the same request, or leaves a gap after it, by more minutes than this.
    :param hook_params: keyword arguments for ``ClarityHook`` (``timeout``, ``max_retries``,
        ``retry_backoff``), as the dbt Cloud operator passes its own.
    :raises ClarityRequestError: invalid arguments, an unusable destination, or a stale run
        with ``on_stale_window="fail"``.
    :raises ClarityQuotaExceededError: no call left, with ``on_quota_exhausted="fail"``.
    """

    template_fields: Sequence[str] = (
        "clarity_conn_id",
        "num_of_days",
        "dimensions",
        "destination",
        "raw_location",
    )
    template_fields_renderers = {"dimensions": "py"}
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        clarity_conn_id: str = ClarityHook.default_conn_name,
        num_of_days: int | str = 1,
        dimensions: Sequence[str] | str = (),
        destination: str | ObjectStoragePath | None = None,
        output_format: str = "parquet",
        raw_location: str | ObjectStoragePath | None = None,
        force_refresh: bool = False,
        max_snapshot_age: int | timedelta | None = None,
        on_quota_exhausted: str = "wait",
        on_stale_window: str = "skip",
        reserve: int | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        xcom_warn_rows: int = 5000,
        coverage_tolerance_minutes: int = overlap.DEFAULT_TOLERANCE_MINUTES,
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        # Not a named parameter on purpose: a DAG-wide default_args pool would otherwise
        # move the task out of the pool that keeps the quota ledger's updates in order.
        kwargs.setdefault("pool", DEFAULT_POOL)
        super().__init__(**kwargs)
        refuse_bad_literals(self.task_id, num_of_days, dimensions)
        self.clarity_conn_id = clarity_conn_id
        self.num_of_days = num_of_days
        self.dimensions = dimensions
        self.destination = absolute_or_templated(destination)
        self.output_format = choice("output_format", output_format, OUTPUT_FORMATS)
        self.raw_location = raw_location
        self.force_refresh = force_refresh
        self.max_snapshot_age = snapshot_age(max_snapshot_age)
        self.on_quota_exhausted = choice("on_quota_exhausted", on_quota_exhausted, QUOTA_MODES)
        self.on_stale_window = choice("on_stale_window", on_stale_window, STALE_MODES)
        self.reserve = reserve
        self.deferrable = deferrable
        self.xcom_warn_rows = xcom_warn_rows
        self.coverage_tolerance_minutes = coverage_tolerance_minutes
        self.hook_params = dict(hook_params or {})
        self._outlet = self._declare_outlet()
        # Set by execute for get_openlineage_facets_on_complete.
        self._project_id: str | None = None
        self._written: ObjectStoragePath | None = None
        self._call_ledger: QuotaLedger | None = None
        self._reused_from: str | None = None

    @cached_property
    def hook(self) -> ClarityHook:
        """The hook for ``clarity_conn_id``; it owns HTTP, the token and retries."""
        return ClarityHook(clarity_conn_id=self.clarity_conn_id, **self.hook_params)

    # ------------------------------------------------------------------ execution

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Render with ``{{ clarity_day }}``, the day a partition names (``windows.partition``)."""
        add_to_context(context)
        super().render_template_fields(context, jinja_env)

    def execute(self, context: Context) -> Any:
        request = ClarityRequest.build(self.num_of_days, self.dimensions)
        warn_if_unsafe_pool(self)
        destination = (
            None if self.destination is None else resolve_path(self.destination, what="destination")
        )
        if destination is not None:
            require_writable(destination, what="destination")
        store = self._snapshot_store(context, destination)
        snapshot = kept_snapshot(store, request, self.hook, self.log, force=self.force_refresh)
        if snapshot is None:
            self._refuse_stale_window(context, request)
            snapshot, self._reused_from = self._one_call_at_a_time(context, request, store)
        try:
            payload = self.hook.interpret(snapshot.to_answer(), request)
        except ClarityQuotaExceededError as exc:  # a 429: calls outside Airflow spent the day
            self._quota_exhausted(self._call_ledger or self._ledger(context), exc)
        return self._deliver(context, request, snapshot, payload, store, destination)

    def execute_complete(self, context: Context, event: Any = None) -> Any:
        """Resume after waiting for the quota reset: check everything again from the start.

        Nothing is carried over from before the deferral (``dag.test()`` drops it anyway):
        the request, the kept snapshot and the ledger are read afresh.
        """
        self.log.info("Clarity quota reset time reached (%s); checking the quota again.", event)
        return self.execute(context)

    def _one_call_at_a_time(
        self, context: Context, request: ClarityRequest, store: SnapshotStore
    ) -> tuple[RawSnapshot, str | None]:
        """Reuse a shared answer or call, under the project's call lock (``quota/lock.py``):
        one export of a project at a time, even in a many-slot pool. Returns the snapshot and
        where it was reused from (``None``: this task called). Waits past any call's length
        end in a reschedule."""
        key, hook = ledger_key(self.hook.project_id), self.hook
        try:
            with project_call_lock(key, read_timeout=hook.timeout, retries=hook.max_retries):
                sharing = SnapshotSharing.for_operator(self, context, store)
                snapshot = sharing.reuse(request) or sharing.offer(
                    self._fetch(context, request, store)
                )
                return snapshot, sharing.reused_from
        except ClarityLockTimeoutError as exc:
            wake = clock.now() + _MIN_WAIT * 2
            self.log.warning("%s No Clarity call was made; looking again at %s.", exc, wake)
            raise AirflowRescheduleException(wake) from None

    def _refuse_stale_window(self, context: Context, request: ClarityRequest) -> None:
        """Skip or fail a run whose data interval Clarity no longer covers."""
        end = context.get("data_interval_end") or context.get("logical_date")
        if end is None:  # A manual run without a logical date: "now" is what it wants.
            return
        age = clock.now() - end
        window = timedelta(days=request.num_of_days)
        if age <= window:
            return
        message = (
            f"Clarity cannot serve this run's data: its interval ended at {utc_text(end)}, "
            f"{hours(age)} ago, but Clarity only returns the {hours(window)} before the call "
            f"and keeps no history (this happens on catch-up, backfill or a late retry). No "
            f"call was spent and nothing was written under this run's date. The next scheduled "
            f"run takes its own snapshot; for the current data now, trigger a run without a "
            f"logical date."
        )
        if self.on_stale_window == "fail":
            raise ClarityRequestError(message)
        raise AirflowSkipException(message)

    def _fetch(
        self, context: Context, request: ClarityRequest, store: SnapshotStore
    ) -> RawSnapshot:
        """Spend one call (if the ledger allows) and keep the answer, whatever it is."""
        ledger = self._ledger(context)
        self._call_ledger = ledger
        exported_at = clock.now()
        try:
            answer = self.hook.fetch(request, observer=ledger)
        except ClarityQuotaExceededError as exc:
            self._quota_exhausted(ledger, exc)
        snapshot = RawSnapshot.from_answer(
            request.params(), self.hook.project_id, exported_at, answer
        )
        if answer.payload is not None and 200 <= answer.status < 300:
            # Mark a no-dimension answer to a breakdown request, so a re-run says so at once.
            try:
                self.hook.interpret(answer, request)
            except ClarityDimensionFallbackError:
                snapshot = replace(snapshot, fallback=True)
            except ClarityError:
                pass
        self._keep(store, snapshot)
        return snapshot

    def _keep(self, store: SnapshotStore, snapshot: RawSnapshot) -> None:
        try:
            store.save(snapshot)
        except Exception:
            self.log.error(
                "Clarity answered, but its answer could not be kept at %s (see the error below). "
                "The call counted against the project's quota and its answer is lost; fix the "
                "location before running the task again.",
                store.location,
            )
            raise

    def _quota_exhausted(self, ledger: QuotaLedger, error: ClarityQuotaExceededError) -> NoReturn:
        """Wait for the reset, skip or fail, as ``on_quota_exhausted`` says. Spends nothing."""
        try:
            # Only a task that really waits joins the queue of waiters.
            wait = self.on_quota_exhausted == "wait"
            reset_at = (
                ledger.wake_at(floor=_MIN_WAIT, spacing=_SPACING) if wait else ledger.next_reset()
            )
        except ValueError:  # The reserve leaves Airflow no call at all: waiting cannot help.
            raise error from None
        why = {
            QuotaSource.API: "Clarity answered 429",
            QuotaSource.DEGRADED: "Clarity is failing with HTTP 5xx; waiting out the cool-down",
        }.get(error.source, "the quota ledger is spent")
        if self.on_quota_exhausted == "fail":
            text = str(error)
            # The ledger's message ends with a command: keep a full stop from joining it.
            separator = " " if text.endswith(".") else "\n"
            raise ClarityQuotaExceededError(
                f"{text}{separator}This task has on_quota_exhausted='fail'; with 'wait' (the "
                f"default) it would wait for the reset and run then, with 'skip' it would be "
                f"skipped.",
                reset_at=error.reset_at,
                source=error.source,
            ) from None
        if self.on_quota_exhausted == "skip":
            raise AirflowSkipException(
                f"No Clarity call left for project '{self.hook.project_id}' ({why}); it resets "
                f"at {utc_text(reset_at)}. Calls spent in this window:\n{ledger.usage()}"
            )
        self.log.info(
            "No Clarity call left for project '%s' (%s); waiting until %s, %s. Calls spent in "
            "this window:\n%s",
            self.hook.project_id,
            why,
            reset_at.isoformat(),
            "deferred to the triggerer" if self.deferrable else "rescheduled",
            ledger.usage(),
        )
        if self.deferrable:
            from airflow.providers.standard.triggers.temporal import DateTimeTrigger

            self.defer(trigger=DateTimeTrigger(moment=reset_at), method_name="execute_complete")
        raise AirflowRescheduleException(reset_at)

    def _deliver(
        self,
        context: Context,
        request: ClarityRequest,
        snapshot: RawSnapshot,
        payload: list[dict[str, Any]],
        store: SnapshotStore,
        destination: ObjectStoragePath | None,
    ) -> list[dict[str, Any]] | ExportSummary:
        """Normalise the snapshot and hand it on: XCom rows, or a file plus an asset event."""
        self._project_id = snapshot.project_id
        covered = self._coverage(context, request, snapshot)
        metadata: dict[str, Any] = {
            "exported_at": snapshot.exported_at,
            "num_of_days": request.num_of_days,
            "project_id": snapshot.project_id,
            "dimensions": request.dimensions,
        }
        if destination is None:
            records = normalize.to_records(payload, **metadata)
            rows_per_metric, truncated = normalize.block_sizes(payload)
            calls_remaining = self._calls_remaining(context)
            self._log_summary(request, rows_per_metric, truncated, "XCom", calls_remaining, covered)
            if len(records) > self.xcom_warn_rows:
                self.log.warning(
                    "Returning %d rows through XCom (more than xcom_warn_rows=%d). XCom lives in "
                    "the metadata database; set destination= to write them to a file instead.",
                    len(records),
                    self.xcom_warn_rows,
                )
            return records
        data = encode(payload, self.output_format, request=request.describe(), **metadata)
        self._write(destination, data, store)
        rows_per_metric, truncated = normalize.block_sizes(payload)
        summary = ExportSummary(
            path=str(destination),
            raw_path=store.location,
            rows=sum(rows_per_metric.values()),
            rows_per_metric=rows_per_metric,
            exported_at=utc_iso(snapshot.exported_at),
            num_of_days=request.num_of_days,
            dimensions=list(request.dimensions),
            possibly_truncated=truncated,
            calls_remaining=self._calls_remaining(context),
            reused_from=self._reused_from,
            project_id=snapshot.project_id,
            **covered.as_extra(),
        )
        extra = {key: summary[key] for key in ("rows", "exported_at", "calls_remaining")}
        self._emit_asset_event(context, asset_uri(destination), {**extra, **covered.as_extra()})
        self._log_summary(
            request,
            rows_per_metric,
            truncated,
            str(destination),
            summary["calls_remaining"],
            covered,
        )
        return summary

    def _write(self, destination: ObjectStoragePath, data: bytes, store: SnapshotStore) -> None:
        if destination.suffix and destination.suffix[1:].lower() != self.output_format:
            self.log.warning(
                "Writing %s to %s, whose name ends in %s; set output_format to match if that "
                "is not what you meant.",
                self.output_format,
                destination,
                destination.suffix,
            )
        try:
            write_atomic(destination, data)
        except Exception:
            self.log.error(
                "Could not write %s (see the error below). Clarity's answer is kept at %s, so "
                "running the task again after fixing the problem reuses it: no call is spent.",
                destination,
                store.location,
            )
            raise
        self._written = destination

    # ------------------------------------------------------------------ where things go

    def _snapshot_store(
        self, context: Context, destination: ObjectStoragePath | None
    ) -> SnapshotStore:
        """Where this task instance keeps its raw snapshot (see the module docs for why)."""
        store = store_for_task(context, raw_location=self.raw_location, destination=destination)
        if isinstance(store, UnkeptSnapshotStore):
            self.log.warning(
                "This context has no task state store and no task instance; the raw snapshot "
                "cannot be kept for retries. Set raw_location (or destination) to keep it."
            )
        elif (note := worker_local_note(store)) is not None:
            self.log.warning(note)
        return store

    def _declare_outlet(self) -> Asset | AssetAlias | None:
        """Declare the asset this task writes: the URI itself, or an alias when templated."""
        alias = _alias_name(self.dag_id if self.has_dag() else None, self.task_id)
        outlet = outlet_for(self.destination, alias=alias)
        if outlet is not None and outlet not in self.outlets:  # partial() may have declared it
            self.outlets = [*self.outlets, outlet]
        return outlet

    @classmethod
    def partial(cls, **kwargs: Any) -> Any:
        """``partial`` that declares the mapped tasks' asset alias when the DAG is parsed,
        as the unmapped operator does (``.partial(...).expand(clarity_conn_id=[...])``)."""
        if kwargs.get("destination") is not None and "outlets" not in kwargs:
            dag = kwargs.get("dag") or DagContext.get_current()
            alias = _alias_name(dag.dag_id if dag is not None else None, kwargs["task_id"])
            kwargs["outlets"] = [outlet_for(kwargs["destination"], alias=alias)]
        return super().partial(**kwargs)

    def _emit_asset_event(self, context: Context, uri: str, extra: dict[str, Any]) -> None:
        emit_asset_event(context.get("outlet_events"), self._outlet, uri, extra)

    # ------------------------------------------------------------------ small helpers

    def _ledger(self, context: Context) -> QuotaLedger:
        return QuotaLedger.for_hook(
            self.hook, caller=_caller(context), reserve=self.reserve, clock=clock.now
        )

    def _coverage(
        self, context: Context, request: ClarityRequest, snapshot: RawSnapshot
    ) -> overlap.Coverage:
        """This snapshot's window against the previous one of the request, from the ledger."""
        at, days = snapshot.exported_at, request.num_of_days
        try:
            ledger = self._call_ledger or self._ledger(context)
            return overlap.from_ledger(ledger, request.describe(), at, days)
        except Exception as exc:
            self.log.warning("Could not read the Clarity quota ledger for coverage: %s", exc)
            return overlap.compare(at, days, None)

    def _calls_remaining(self, context: Context) -> int | None:
        """Calls left after this task, for the summary; ``None`` if the ledger is unreadable.

        After a call, the ledger already knows it from recording the answer: no second read.
        """
        ledger = self._call_ledger
        if ledger is not None and ledger.remaining_after_last_call is not None:
            return ledger.remaining_after_last_call
        try:
            return self._ledger(context).remaining()
        except Exception as exc:
            self.log.warning("Could not read the Clarity quota ledger: %s", exc)
            return None

    def _log_summary(
        self,
        request: ClarityRequest,
        rows_per_metric: dict[str, int],
        truncated: list[str],
        target: str,
        calls_remaining: int | None,
        covered: overlap.Coverage,
    ) -> None:
        per_metric = ", ".join(f"{name} {rows}" for name, rows in rows_per_metric.items())
        warning = (
            f" Possibly truncated at Clarity's {ROW_CAP}-row cap: {', '.join(truncated)}."
            if truncated
            else ""
        )
        self.log.info(
            "Clarity export %s for project '%s': %d rows (%s) -> %s. Window %s -> %s: %s. "
            "Calls left in this window: %s.%s",
            request.describe(),
            self._project_id,
            sum(rows_per_metric.values()),
            per_metric or "no blocks",
            target,
            utc_iso(covered.window_start),
            utc_iso(covered.window_end),
            covered.describe(),
            "unknown" if calls_remaining is None else calls_remaining,
            warning,
        )
        problem = covered.problem(self.coverage_tolerance_minutes)
        if problem is not None:
            self.log.warning("%s", problem)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        """Clarity's project as the input dataset, the written table as the output.

        Returns ``None`` when the ``openlineage`` extra is not installed.
        """
        project_id = self._project_id or self.hook.project_id
        return openlineage_facets(self.hook.base_url, project_id, self._written)


def _caller(context: Context) -> str:
    """The ledger's label for the task instance in ``context``."""
    return caller_label(context["ti"])


def _alias_name(dag_id: str | None, task_id: str) -> str:
    """The asset alias a templated destination is declared under: ``clarity/DAG/TASK``."""
    return f"clarity/{dag_id}/{task_id}" if dag_id is not None else f"clarity/{task_id}"
