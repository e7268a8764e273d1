"""The hand-written code a user would write instead of the provider: the benchmarks' baselines.

``export_task`` is the minimal task body: look up the connection, ``requests.get`` with the
bearer token, ``json.dump`` the answer, ``pandas.json_normalize``, ``to_parquet``. It needs
``naive_coerce`` to run at all: Clarity sends counts as strings (``"9554"``) and sometimes
as the integer ``0``, and pyarrow refuses such a mixed column ("Expected bytes, got a 'int'
object"). ``naive_coerce`` is the first fix a user reaches for: ``pd.to_numeric`` on the
count columns they saw in a sample response.

What the baseline does not do, and the provider does: validate the request, keep the raw
answer in a reusable envelope, write atomically (temp file, fsync, rename), count the call
in the quota ledger, retry, give every response one schema with typed nullable columns.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    import pandas as pd

ENDPOINT = "/export-data/api/v1/project-live-insights"

# The count fields a user sees in a sample response (camelCase, as Clarity sends them).
COUNT_FIELDS = (
    "totalSessionCount",
    "totalBotSessionCount",
    "distinctUserCount",
    "totalTime",
    "activeTime",
    "sessionsCount",
    "pagesViews",
    "subTotal",
    "visitsCount",
)


def naive_coerce(frame: pd.DataFrame) -> pd.DataFrame:
    """Turn the count columns present into numbers, in place; percentages are floats already."""
    import pandas as pd

    for column in COUNT_FIELDS:
        if column in frame.columns:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def naive_dataframe(payload: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per ``information`` element, the block's ``metricName`` beside it."""
    import pandas as pd

    frame = pd.json_normalize(payload, record_path="information", meta="metricName")
    return naive_coerce(frame)


def export_task(
    conn_id: str, dimensions: tuple[str, ...], raw_path: str, out_path: str
) -> dict[str, Any]:
    """The hand-written export: one call, raw JSON kept, one Parquet file written."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    params = {"numOfDays": "1"}
    params.update({f"dimension{i}": name for i, name in enumerate(dimensions, start=1)})
    response = requests.get(
        f"{conn.host}{ENDPOINT}",
        params=params,
        headers={"Authorization": f"Bearer {conn.password}"},
        timeout=60,
    )
    response.raise_for_status()
    payload = response.json()
    with open(raw_path, "w", encoding="utf-8") as handle:
        json.dump(payload, handle)
    frame = naive_dataframe(payload)
    frame.to_parquet(out_path, index=False)
    return {"path": out_path, "rows": len(frame)}
