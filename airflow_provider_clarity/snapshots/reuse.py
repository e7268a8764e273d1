"""The export operator's reuse of a kept raw snapshot instead of a new call."""

from __future__ import annotations

from typing import Any

from airflow_provider_clarity.exceptions import ClarityDimensionFallbackError
from airflow_provider_clarity.hooks.clarity import ClarityHook
from airflow_provider_clarity.quota import metrics
from airflow_provider_clarity.request import ClarityRequest
from airflow_provider_clarity.snapshots.raw import RawSnapshot, SnapshotStore


def kept_snapshot(
    store: SnapshotStore,
    request: ClarityRequest,
    hook: ClarityHook,
    log: Any,
    *,
    force: bool,
) -> RawSnapshot | None:
    """The answer this task instance kept, when a re-run may read it instead of calling.

    ``force`` is the operator's ``force_refresh``. The store is read even with it: reading
    it is what proves, before a call is spent, that the answer can be kept there
    (credentials, bucket, permissions). ``log`` is the operator's task logger.
    """
    snapshot = store.load()
    if snapshot is None or force:
        return None
    host = hook.base_url
    if not snapshot.matches(request.params(), hook.project_id, host):
        log.warning(
            "The raw snapshot kept at %s answers %s for project '%s' at %s, not this task's "
            "%s for project '%s' at %s; fetching again.",
            store.location,
            snapshot.request,
            snapshot.project_id,
            snapshot.host,
            request.params(),
            hook.project_id,
            host,
        )
        return None
    if not snapshot.reusable:
        log.info(
            "The answer kept at %s is Clarity's HTTP %d, which says nothing about the data; "
            "calling again.",
            store.location,
            snapshot.status,
        )
        return None
    log.info(
        "Reusing the raw snapshot kept at %s (HTTP %d, exported_at %s); no Clarity call "
        "spent. Set force_refresh=True to fetch again.",
        store.location,
        snapshot.status,
        snapshot.exported_at.isoformat(),
    )
    if snapshot.fallback:
        raise ClarityDimensionFallbackError(
            f"The kept snapshot at {store.location} is Clarity's no-dimension answer to a "
            f"request for {', '.join(request.dimensions)}: Clarity ignored the dimensions. "
            f"Set force_refresh=True to spend another call trying again.",
            payload=snapshot.response,
            dimensions=request.dimensions,
        )
    metrics.snapshot_reused(hook.project_id, "kept")
    return snapshot
