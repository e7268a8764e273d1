"""Encode a normalised table as Parquet, CSV, JSON Lines or JSON bytes.

One function per output, all reading the normaliser's typed output, so every
format carries the same columns and types. pandas and pyarrow are imported only here,
inside the functions, never when a DAG file is parsed.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from typing import Any

from airflow_provider_clarity import normalize

OUTPUT_FORMATS = ("parquet", "csv", "jsonl", "json")
#: Parquet key-value metadata: the schema version, and the request the file answers (JSON).
PARQUET_VERSION_KEY = "clarity.schema_version"
PARQUET_REQUEST_KEY = "clarity.request"


def encode(payload: Any, output_format: str, *, request: str = "", **metadata: Any) -> bytes:
    """The table for ``payload`` (a Clarity answer) in ``output_format``, as bytes.

    ``metadata`` (``exported_at``, ``num_of_days``, ``project_id``, ``dimensions``) becomes
    columns, as in ``normalize``. A Parquet file also carries ``normalize.SCHEMA_VERSION``
    and the request (``request``, e.g. ``numOfDays=1 dimensions=OS``, with the metadata) in
    its key-value metadata.

    :raises ValueError: an unknown format.
    :raises ClarityResponseError: the payload cannot be normalised.
    """
    if output_format in ("json", "jsonl"):
        records = normalize.to_records(payload, **metadata)
        if output_format == "json":
            return json.dumps(records, ensure_ascii=False).encode("utf-8")
        lines = (json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        return "".join(lines).encode("utf-8")
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"output_format must be one of {', '.join(OUTPUT_FORMATS)}")
    frame = normalize.to_dataframe(payload, **metadata)
    if output_format == "csv":
        return frame.to_csv(index=False).encode("utf-8")
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    described = {"request": request, **{k: _json_safe(v) for k, v in metadata.items()}}
    table = table.replace_schema_metadata(
        {
            **(table.schema.metadata or {}),
            PARQUET_VERSION_KEY: normalize.SCHEMA_VERSION,
            PARQUET_REQUEST_KEY: json.dumps(described, sort_keys=True),
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _json_safe(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return ",".join(value)
    return value
