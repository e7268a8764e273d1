"""Assets and lineage of what an export wrote: outlets, asset events, OpenLineage facets.

OpenLineage is imported only when its facets are asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetAlias, ObjectStoragePath

from airflow_provider_clarity.utils.storage import asset_uri, bucket_of, is_local

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage


def literal_asset(destination: Any) -> Asset | None:
    """The asset of a fixed ``destination``; ``None`` when it is templated (or absent)."""
    if isinstance(destination, str | ObjectStoragePath) and "{{" not in str(destination):
        return Asset(uri=asset_uri(destination))
    return None


def outlet_for(destination: Any, *, alias: str) -> Asset | AssetAlias | None:
    """The asset a task writing to ``destination`` declares: the URI itself when it is fixed,
    else an ``AssetAlias`` named ``alias`` (a templated URI is known only at run time)."""
    if destination is None:
        return None
    return literal_asset(destination) or AssetAlias(name=alias)


def emit_asset_event(
    outlet_events: Any, outlet: Asset | AssetAlias | None, uri: str, extra: dict[str, Any]
) -> None:
    """Attach ``extra`` to the event for ``outlet`` (through the alias, naming ``uri``)."""
    if outlet is None or outlet_events is None:
        return
    if isinstance(outlet, AssetAlias):
        outlet_events[outlet].add(Asset(uri=uri), extra=extra)
    else:
        outlet_events[outlet].extra.update(extra)


def openlineage_facets(
    base_url: str, project_id: str, written: ObjectStoragePath | None
) -> OperatorLineage | None:
    """Clarity's project as the input dataset, the written table as the output; ``None``
    when the ``openlineage`` extra is not installed."""
    try:
        from airflow.providers.common.compat.openlineage.facet import Dataset
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:
        return None
    inputs = [Dataset(namespace=base_url, name=f"project/{project_id}/live-insights")]
    outputs = []
    if written is not None:
        if is_local(written):  # OpenLineage names local files by their absolute path.
            outputs.append(Dataset(namespace="file", name=written.path))
        else:
            namespace = f"{written.protocol}://{bucket_of(written)}"
            outputs.append(Dataset(namespace=namespace, name=written.key))
    return OperatorLineage(inputs=inputs, outputs=outputs)
