"""Encode a normalised table as Parquet, CSV, JSON Lines or JSON bytes.

STYLE: one function per output, all reading the normaliser's typed output, so every
format carries the same columns and types. pandas and pyarrow are imported only here,
inside the functions, never when a DAG file is parsed.
"""

from __future__ import annotations

import io
import json
from typing import Any

from airflow_provider_clarity import normalize

__all__ = ["OUTPUT_FORMATS", "encode"]

OUTPUT_FORMATS = ("parquet", "csv", "jsonl", "json")


def encode(payload: Any, output_format: str, **metadata: Any) -> bytes:
    """The table for ``payload`` (a Clarity answer) in ``output_format``, as bytes.

    ``metadata`` (``exported_at``, ``num_of_days``) becomes columns, as in ``normalize``.

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
    buffer = io.BytesIO()
    frame.to_parquet(buffer, engine="pyarrow", index=False)
    return buffer.getvalue()
