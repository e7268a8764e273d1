"""ClarityDeriveOperator: coarser tables from an upstream export's raw snapshot, no call spent."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, BaseOperator, ObjectStoragePath

from airflow_provider_clarity import normalize
from airflow_provider_clarity.derive import DerivedPayload, roll_up
from airflow_provider_clarity.exceptions import ClarityRequestError
from airflow_provider_clarity.outputs.lineage import literal_asset
from airflow_provider_clarity.request import ClarityRequest
from airflow_provider_clarity.snapshots.raw import PathSnapshotStore
from airflow_provider_clarity.utils.storage import resolve_path, write_atomic
from airflow_provider_clarity.windows.partition import add_to_context

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["ClarityDeriveOperator"]

FORMATS = ("parquet", "csv", "jsonl")
#: The column naming the breakdown a derived table was computed from (e.g. ``Device,OS``).
DERIVED_FROM_COLUMN = "derived_from"


class ClarityDeriveOperator(BaseOperator):
    """Write breakdowns derived (``derive.roll_up``) from a kept raw Clarity snapshot.

    Reads the ``clarity-raw/1`` file an upstream ``ClarityExportOperator`` kept (beside its
    destination as ``NAME.raw.json``, or under ``raw_location``), rolls it up to each
    requested breakdown and writes one table per breakdown, with the export's schema plus a
    ``derived_from`` column naming the source breakdown. It never calls Clarity.

    :param source: the raw snapshot file (URI or ``ObjectStoragePath``). Templated.
    :param outputs: breakdown -> destination, the breakdown as comma-separated dimensions
        (``"Device"``, ``"Device,OS"``, ``""`` for the totals). Destinations templated.
    :param output_format: ``parquet``, ``csv`` or ``jsonl``.
    :raises ClarityRequestError: no snapshot at ``source``, a snapshot Clarity answered with
        the no-dimension fallback, or a roll-up that would not be sound.
    """

    template_fields: Sequence[str] = ("source", "outputs")
    ui_color = "#e8f1fb"

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Render with ``{{ clarity_day }}`` (``windows.partition``), as exports do."""
        add_to_context(context)
        super().render_template_fields(context, jinja_env)

    def __init__(
        self,
        *,
        source: str | ObjectStoragePath,
        outputs: Mapping[str, str | ObjectStoragePath],
        output_format: str = "parquet",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if output_format not in FORMATS:
            raise ClarityRequestError(
                f"output_format must be one of {', '.join(FORMATS)}, not {output_format!r}"
            )
        if not outputs:
            raise ClarityRequestError("outputs is empty: name at least one breakdown to write")
        self.source = source
        self.outputs = dict(outputs)
        self.output_format = output_format
        # Literal paths are declared as assets; templated ones are known only at run time.
        self.inlets = [*self.inlets, *_assets([source])]
        self.outlets = [*self.outlets, *_assets(self.outputs.values())]

    def execute(self, context: Context) -> dict[str, Any]:
        store = PathSnapshotStore(resolve_path(self.source, what="source"))
        snapshot = store.load()
        if snapshot is None:
            raise ClarityRequestError(
                f"No clarity-raw/1 snapshot at {store.location}; run the export that keeps it "
                "first (its destination's NAME.raw.json, or its raw_location)"
            )
        if snapshot.fallback:
            raise ClarityRequestError(
                f"{store.location} holds the no-dimension snapshot Clarity sent instead of the "
                "requested breakdown; there is nothing finer to roll up"
            )
        request = snapshot.request
        dims = ClarityRequest.wire_dimensions(request)
        metadata = {"exported_at": snapshot.exported_at, "num_of_days": request["numOfDays"]}
        # Every roll-up is checked before anything is written: one unsound output fails all.
        derived = {b: roll_up(snapshot.response, dims, b) for b in self.outputs}
        written: dict[str, Any] = {}
        for breakdown, destination in self.outputs.items():
            path = resolve_path(destination, what=f"outputs[{breakdown!r}]")
            write_atomic(path, self._encode(derived[breakdown], metadata))
            rows = sum(len(b["information"]) for b in derived[breakdown])
            source = derived[breakdown].source
            self.log.info("Wrote %d rows by %r (derived from %s) to %s; no call spent.",
                          rows, breakdown, source, path)  # fmt: skip
            written[breakdown] = {"path": str(path), "rows": rows, "derived_from": source}
        return {"source": store.location, "exported_at": snapshot.exported_at.isoformat(),
                "outputs": written}  # fmt: skip

    def _encode(self, derived: DerivedPayload, metadata: dict[str, Any]) -> bytes:
        if self.output_format == "jsonl":
            records = normalize.to_records(derived, **metadata)
            text = "".join(
                json.dumps({**r, DERIVED_FROM_COLUMN: derived.source}, ensure_ascii=False) + "\n"
                for r in records
            )
            return text.encode("utf-8")
        frame = normalize.to_dataframe(derived, **metadata)
        frame[DERIVED_FROM_COLUMN] = derived.source
        frame[DERIVED_FROM_COLUMN] = frame[DERIVED_FROM_COLUMN].astype("string")
        if self.output_format == "csv":
            return frame.to_csv(index=False).encode("utf-8")
        buffer = io.BytesIO()
        frame.to_parquet(buffer, engine="pyarrow", index=False)
        return buffer.getvalue()


def _assets(paths: Any) -> list[Asset]:
    return [asset for p in paths if (asset := literal_asset(p)) is not None]
