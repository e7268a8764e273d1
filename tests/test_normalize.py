"""Tests for airflow_provider_clarity.normalize: the documented output schema and its types."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_clarity.exceptions import ClarityResponseError
from airflow_provider_clarity.normalize import COLUMNS, to_dataframe, to_records

FIXTURES = Path(__file__).parent / "fixtures"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

KNOWN_COLUMNS = [
    "metric",
    "browser",
    "device",
    "country",
    "os",
    "source",
    "medium",
    "campaign",
    "channel",
    "url",
    "total_session_count",
    "total_bot_session_count",
    "distinct_user_count",
    "pages_per_session_percentage",
    "average_scroll_depth",
    "total_time",
    "active_time",
    "sessions_count",
    "sessions_with_metric_percentage",
    "sessions_without_metric_percentage",
    "pages_views",
    "sub_total",
    "name",
    "visits_count",
    "screens_views",
    "screens_per_session_percentage",
    "screen_name",
]
STRING_COLUMNS = {"metric", "browser", "device", "country", "os", "source", "medium"}
STRING_COLUMNS |= {"campaign", "channel", "url", "name", "screen_name"}
FLOAT_COLUMNS = {
    "screens_per_session_percentage",
    "pages_per_session_percentage",
    "average_scroll_depth",
    "sessions_with_metric_percentage",
    "sessions_without_metric_percentage",
}
INT_COLUMNS = set(KNOWN_COLUMNS) - STRING_COLUMNS - FLOAT_COLUMNS
EXPORTED_AT = datetime(2024, 5, 1, 6, 0, 0, 123456, tzinfo=UTC)


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def frame_as_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The DataFrame's content in to_records' terms: nulls as None, timestamps as ISO text."""
    records = []
    for row in frame.astype(object).itertuples(index=False):
        record = {}
        for column, value in zip(frame.columns, row, strict=True):
            if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
                value = None
            elif isinstance(value, pd.Timestamp):
                value = value.isoformat()
            record[column] = value
        records.append(record)
    return records


def assert_known_dtypes(frame: pd.DataFrame) -> None:
    for column in STRING_COLUMNS:
        assert frame[column].dtype == pd.StringDtype("pyarrow"), column
    for column in INT_COLUMNS:
        assert frame[column].dtype == "Int64", column
    for column in FLOAT_COLUMNS:
        assert frame[column].dtype == "float64", column


# --- Real response shapes -------------------------------------------------------------------


def test_no_dimension_snapshot_has_one_row_per_information_element() -> None:
    payload = load("payload_no_dimension.json")
    frame = to_dataframe(payload)

    assert len(payload) == 16
    assert len(frame) == sum(len(block["information"]) for block in payload) == 33
    assert list(frame.columns) == KNOWN_COLUMNS
    assert_known_dtypes(frame)
    assert frame["metric"].value_counts()["Browser"] == 4
    assert list(frame["metric"].unique()) == [block["metricName"] for block in payload]

    traffic = frame[frame["metric"] == "Traffic"].iloc[0]
    assert traffic["total_session_count"] == 1204
    assert traffic["total_bot_session_count"] == 118
    assert traffic["distinct_user_count"] == 987
    assert traffic["pages_per_session_percentage"] == 2.75
    assert pd.isna(traffic["sessions_count"])

    engagement = frame[frame["metric"] == "EngagementTime"].iloc[0]
    assert (engagement["total_time"], engagement["active_time"]) == (402118, 96210)
    assert frame.loc[frame["metric"] == "ScrollDepth", "average_scroll_depth"].item() == 61.37


def test_behaviour_blocks_keep_zeros_and_missing_fields() -> None:
    frame = to_dataframe(load("payload_no_dimension.json")).set_index("metric")

    excessive = frame.loc["ExcessiveScroll"]
    assert excessive["sub_total"] == 0
    assert excessive["sessions_with_metric_percentage"] == 0.0
    assert excessive["sessions_without_metric_percentage"] == 100.0
    assert frame["sub_total"].isna()["QuickbackClick"]
    assert frame["pages_views"].isna()["ScriptErrorCount"]
    assert frame.loc["ScriptErrorCount", "sub_total"] == 31


def test_name_blocks_keep_null_names_null_and_the_literal_none_as_sent() -> None:
    frame = to_dataframe(load("payload_no_dimension.json"))

    browsers = frame[frame["metric"] == "Browser"]
    assert browsers["name"].isna().sum() == 1
    assert "None" not in set(browsers["name"].dropna())
    # Clarity itself names direct traffic "None": that is data, kept as sent.
    referrers = frame.loc[frame["metric"] == "ReferrerUrl", "name"]
    assert referrers.iloc[0] == "None"
    assert frame.loc[frame["metric"] == "Device", "name"].tolist() == [
        "PC",
        "Mobile",
        "Tablet",
        "Other",
    ]


def test_popular_pages_url_lands_in_url_column_unchanged() -> None:
    payload = load("payload_no_dimension.json")
    frame = to_dataframe(payload)

    pages = frame[frame["metric"] == "PopularPages"]
    sent = [row["url"] for row in payload[-1]["information"]]
    assert pages["url"].tolist() == sent
    assert max(len(url) for url in sent) > 800
    assert pages["visits_count"].tolist() == [640, 212, 0]
    assert frame.loc[frame["metric"] != "PopularPages", "url"].isna().all()


def test_url_breakdown_maps_url_key_and_keeps_null_row() -> None:
    payload = load("payload_url.json")
    frame = to_dataframe(payload)

    assert len(payload) == 9
    assert len(frame) == sum(len(block["information"]) for block in payload)
    assert list(frame.columns) == KNOWN_COLUMNS
    assert_known_dtypes(frame)

    traffic = frame[frame["metric"] == "Traffic"]
    assert len(traffic) == 4
    assert traffic["url"].isna().tolist() == [True, False, False, False]
    assert (
        traffic["url"].iloc[3] == "https://shop.example.com/?utm_source=newsletter&fbclid=IwAR0abc"
    )
    assert traffic["total_session_count"].tolist() == [1204, 400, 120, 9]
    assert traffic["total_bot_session_count"].tolist() == [118, 40, 0, 9]
    assert traffic["pages_per_session_percentage"].tolist() == [2.75, 1.09, 1.0, 0.0]


def test_blocks_of_differing_lengths_and_empty_blocks() -> None:
    frame = to_dataframe(load("payload_url.json"))

    counts = frame["metric"].value_counts().to_dict()
    assert counts["Traffic"] == 4
    assert counts["ExcessiveScroll"] == 1
    assert counts["DeadClickCount"] == 2
    assert "QuickbackClick" not in counts
    # Each row got its own block's values: no value leaks across blocks.
    scroll = frame[frame["metric"] == "ScrollDepth"]
    assert scroll["average_scroll_depth"].tolist() == [58.2, 100.0]
    assert scroll["sessions_count"].isna().all()
    assert frame.loc[frame["metric"] != "ScrollDepth", "average_scroll_depth"].isna().all()


def test_mixed_spellings_in_one_response() -> None:
    frame = to_dataframe(load("payload_mixed_spellings.json"))
    traffic = frame[frame["metric"] == "Traffic"]

    assert "distant_user_count" not in frame.columns
    assert traffic["os"].tolist() == ["Android", "Other", "iOS", "Linux"]
    # Row 3 carries both spellings: the live spelling wins.
    assert traffic["distinct_user_count"].tolist() == [212836, 189733, 4200, 65]
    assert traffic["pages_per_session_percentage"].tolist() == [2.2609, 1.0931, 1.5, 1.2]
    scroll = frame[frame["metric"] == "ScrollDepth"]
    assert scroll["os"].tolist() == ["Android", "Other"]


def test_dimension_keys_are_matched_case_insensitively() -> None:
    payload = [
        {
            "metricName": "Traffic",
            "information": [
                {"totalSessionCount": "1", "URL": "https://a", "BROWSER": "Chrome"},
                {"totalSessionCount": "2", "url": "https://b", "browser": "Edge"},
                {"totalSessionCount": "3", "Url": "https://c", "Country": "Chile"},
            ],
        }
    ]
    frame = to_dataframe(payload)

    assert frame["url"].tolist() == ["https://a", "https://b", "https://c"]
    assert frame["browser"].tolist()[:2] == ["Chrome", "Edge"]
    assert frame["country"].tolist()[2] == "Chile"
    assert list(frame.columns) == KNOWN_COLUMNS


def test_all_empty_blocks_give_zero_rows_with_the_full_typed_schema() -> None:
    frame = to_dataframe(load("payload_empty.json"), exported_at=EXPORTED_AT, num_of_days=1)

    assert len(frame) == 0
    assert list(frame.columns) == [
        *KNOWN_COLUMNS,
        "exported_at",
        "window_start",
        "window_end",
        "num_of_days",
    ]
    assert_known_dtypes(frame)
    assert frame["exported_at"].dtype == "datetime64[us, UTC]"
    assert frame["window_start"].dtype == "datetime64[us, UTC]"
    assert frame["num_of_days"].dtype == "Int64"
    assert to_records(load("payload_empty.json")) == []


def test_empty_payload_still_has_the_metric_column() -> None:
    frame = to_dataframe([])

    assert len(frame) == 0
    assert frame.columns[0] == "metric"
    assert list(frame.columns) == list(COLUMNS) == KNOWN_COLUMNS
    frame = to_dataframe([], exported_at=EXPORTED_AT, num_of_days=3)
    assert list(frame.columns)[-4:] == ["exported_at", "window_start", "window_end", "num_of_days"]


def test_schema_is_identical_across_breakdowns_and_traffic() -> None:
    """Parquet partitions written from different responses share one schema."""
    frames = [
        to_dataframe(load(name), exported_at=EXPORTED_AT, num_of_days=1)
        for name in ("payload_no_dimension.json", "payload_url.json", "payload_empty.json")
    ]
    schemas = [list(frame.dtypes.astype(str).items()) for frame in frames]
    assert schemas[0] == schemas[1] == schemas[2]


def test_unknown_metric_and_fields_are_kept_snake_cased_and_typed() -> None:
    frame = to_dataframe(load("payload_mobile_app.json"), num_of_days=2)

    # Mobile-app fields are known columns (issue 11), so nothing here is unknown.
    assert list(frame.columns) == [*KNOWN_COLUMNS, "num_of_days"]
    assert frame["metric"].tolist() == ["DeadTapCount", "Traffic", "Traffic", "PopularScreens"]
    assert frame["screens_views"].dtype == "Int64"
    assert frame["screens_views"].tolist()[0] == 160
    assert frame["screens_per_session_percentage"].dtype == "float64"
    assert frame["screens_per_session_percentage"].tolist()[1:3] == [3.2, 3.0]
    assert frame["screen_name"].dtype == pd.StringDtype("pyarrow")
    assert frame["screen_name"].tolist()[3] == "HomeActivity"
    assert frame["device"].tolist() == ["Mobile", "Mobile", "Tablet", "Mobile"]
    assert frame["visits_count"].tolist()[3] == 30


def test_unknown_fields_are_always_text() -> None:
    """Issue 11 changed this rule: no inference, so a field's type never depends on the day."""
    payload = [
        {
            "metricName": "NewMetric",
            "information": [
                {"bigCount": "9223372036854775807", "ratio": 1, "label": 5, "flag": True},
                {"bigCount": 3, "ratio": 0.5, "label": "x", "flag": None, "HTTPStatus": None},
                {"bigCount": None, "ratio": "2", "label": {"a": 1}, "flag": False},
            ],
        }
    ]
    frame = to_dataframe(payload)

    text = pd.StringDtype("pyarrow")
    assert frame["big_count"].dtype == text
    assert frame["big_count"].tolist()[:2] == [str(INT64_MAX), "3"]
    assert frame["ratio"].dtype == text
    assert frame["ratio"].tolist() == ["1", "0.5", "2"]
    assert frame["label"].dtype == text
    assert frame["label"].tolist() == ["5", "x", '{"a": 1}']
    assert frame["flag"].dtype == text
    assert frame["flag"].tolist()[::2] == ["true", "false"]
    # A field seen only as null is still kept, as a string column.
    assert frame["http_status"].isna().all()
    assert frame["http_status"].dtype == pd.StringDtype("pyarrow")
    assert frame_as_records(frame) == to_records(payload)


@pytest.mark.parametrize(
    "values",
    [
        (0, "9554", None),  # Clarity's zero as a number, counts as strings, a missing value
        (1.5, 2, "n/a"),
        (None, None, None),  # a day on which the field is only null
        (True, {"a": 1}, [1, 2]),
    ],
)
def test_an_unknown_field_has_the_same_type_whatever_its_values(values: tuple[Any, ...]) -> None:
    """Payloads that differ only in values give one schema: unknown fields never drift."""

    def day(value: Any) -> list[dict[str, Any]]:
        return [{"metricName": "NewMetric", "information": [{"newField": value}]}]

    reference = to_dataframe(day(12), exported_at=EXPORTED_AT, num_of_days=1).dtypes
    for value in values:
        frame = to_dataframe(day(value), exported_at=EXPORTED_AT, num_of_days=1)
        assert frame.dtypes.astype(str).to_dict() == reference.astype(str).to_dict(), value


def test_unknown_field_colliding_with_a_metadata_column_is_renamed() -> None:
    payload = [{"metricName": "X", "information": [{"Metric": "m", "numOfDays": "7"}]}]
    record = to_records(payload, num_of_days=1)[0]

    assert record["metric"] == "X"
    assert record["metric_field"] == "m"
    assert record["num_of_days"] == 1
    assert record["num_of_days_field"] == "7"


# --- Types and metadata -----------------------------------------------------------------


def test_exported_at_is_converted_to_utc() -> None:
    local = datetime(2024, 5, 1, 8, 0, tzinfo=timezone(timedelta(hours=2)))
    payload = load("payload_url.json")
    frame = to_dataframe(payload, exported_at=local, num_of_days="2")

    assert frame["exported_at"].dtype == "datetime64[us, UTC]"
    assert (frame["exported_at"] == pd.Timestamp("2024-05-01T06:00:00Z")).all()
    assert frame["num_of_days"].tolist() == [2] * len(frame)
    records = to_records(payload, exported_at="2024-05-01T08:00:00+02:00", num_of_days=2)
    assert {r["exported_at"] for r in records} == {"2024-05-01T06:00:00+00:00"}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"exported_at": datetime(2024, 5, 1)}, ValueError),
        ({"exported_at": "2024-05-01T06:00:00"}, ValueError),
        ({"exported_at": "yesterday"}, ValueError),
        ({"exported_at": 1714543200}, TypeError),
        ({"num_of_days": "one"}, ValueError),
        ({"num_of_days": True}, ValueError),
    ],
)
def test_bad_metadata_arguments_are_rejected(kwargs: dict[str, Any], error: type) -> None:
    with pytest.raises(error):
        to_dataframe([], **kwargs)
    with pytest.raises(error):
        to_records([], **kwargs)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("totalSessionCount", "abc"),
        ("totalSessionCount", 1.5),
        ("totalSessionCount", "1.5"),
        ("totalSessionCount", True),
        ("totalSessionCount", " 12"),
        ("totalSessionCount", "1_000"),
        ("totalSessionCount", ""),
        ("totalSessionCount", str(2**63)),
        ("totalSessionCount", -(2**63) - 1),
        ("pagesPerSessionPercentage", "lots"),
        ("pagesPerSessionPercentage", [1.0]),
        ("pagesPerSessionPercentage", float("inf")),
        ("Url", {"href": "https://a"}),
    ],
)
def test_uncoercible_value_names_metric_and_field(field: str, value: Any) -> None:
    payload = [
        {"metricName": "ScrollDepth", "information": [{"averageScrollDepth": 50}]},
        {"metricName": "Traffic", "information": [{"totalSessionCount": "1"}, {field: value}]},
    ]
    for convert in (to_dataframe, to_records):
        with pytest.raises(ClarityResponseError) as caught:
            convert(payload)
        message = str(caught.value)
        assert "'Traffic'" in message
        assert repr(field) in message
        assert "row 1" in message


def test_lenient_but_exact_coercions() -> None:
    payload = [
        {
            "metricName": "Traffic",
            "information": [
                {"totalSessionCount": 7.0, "pagesPerSessionPercentage": "1.25", "name": 404},
                {"totalSessionCount": "-3", "pagesPerSessionPercentage": float("nan")},
                {"totalSessionCount": str(INT64_MAX), "pagesPerSessionPercentage": 3},
            ],
        }
    ]
    records = to_records(payload)

    assert [r["total_session_count"] for r in records] == [7, -3, INT64_MAX]
    assert [r["pages_per_session_percentage"] for r in records] == [1.25, None, 3.0]
    assert records[0]["name"] == "404"
    assert to_dataframe(payload)["total_session_count"].tolist()[2] == INT64_MAX


@pytest.mark.parametrize(
    ("payload", "found"),
    [
        ({"metricName": "Traffic", "information": []}, "got dict"),
        ("Too many requests", "got str"),
        (None, "got null"),
        ([["Traffic"]], "block 0 is list"),
        ([{"information": []}], "block 0 has metricName None"),
        ([{"metricName": 7, "information": []}], "block 0 has metricName 7"),
        (
            [{"metricName": "Traffic", "information": None}],
            "'Traffic' (block 0) has information null",
        ),
        ([{"metricName": "Traffic", "information": {"a": 1}}], "information dict"),
        ([{"metricName": "Traffic", "information": ["row"]}], "'Traffic' row 0 is str"),
    ],
)
def test_wrong_payload_shape_says_what_was_found(payload: Any, found: str) -> None:
    for convert in (to_dataframe, to_records):
        with pytest.raises(ClarityResponseError, match="expected") as caught:
            convert(payload)
        assert found in str(caught.value)


# --- Records ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "payload_no_dimension.json",
        "payload_url.json",
        "payload_mixed_spellings.json",
        "payload_mobile_app.json",
        "payload_empty.json",
    ],
)
def test_records_are_json_safe_and_equal_the_dataframe(name: str) -> None:
    payload = load(name)
    records = to_records(payload, exported_at=EXPORTED_AT, num_of_days=1)
    frame = to_dataframe(payload, exported_at=EXPORTED_AT, num_of_days=1)

    assert json.loads(json.dumps(records, allow_nan=False)) == records
    assert records == frame_as_records(frame)
    assert all(list(record) == list(frame.columns) for record in records)
    for record in records:
        for value in record.values():
            assert value is None or type(value) in (str, int, float, bool)
        assert record["exported_at"] == "2024-05-01T06:00:00.123456+00:00"


def test_module_import_and_to_records_do_not_load_pandas_or_pyarrow(tmp_path: Path) -> None:
    script = (
        "import json, sys\n"
        "import airflow_provider_clarity.normalize as n\n"
        "assert 'pandas' not in sys.modules and 'pyarrow' not in sys.modules, 'import'\n"
        f"payload = json.load(open({str(FIXTURES / 'payload_url.json')!r}))\n"
        "records = n.to_records(payload, exported_at='2024-05-01T06:00:00+00:00')\n"
        "assert records and 'pandas' not in sys.modules and 'pyarrow' not in sys.modules\n"
    )
    env = {**os.environ, "AIRFLOW_HOME": os.environ.get("AIRFLOW_HOME", str(tmp_path))}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]


# --- Properties ---------------------------------------------------------------------------

counts = st.integers(min_value=INT64_MIN, max_value=INT64_MAX) | st.sampled_from(
    [0, 1, 2**53 + 1, INT64_MAX, INT64_MIN, 10**18 + 7]
)
count_values = counts.flatmap(lambda n: st.sampled_from([n, str(n)]))
rows = st.fixed_dictionaries(
    {"totalSessionCount": count_values},
    optional={
        "sessionsCount": count_values,
        "Url": st.none() | st.text(max_size=20),
        "averageScrollDepth": st.floats(0, 100),
        "newCount": count_values,
    },
)
blocks = st.builds(
    lambda metric, information: {"metricName": metric, "information": information},
    st.sampled_from(["Traffic", "ScrollDepth", "DeadClickCount", "DeadTapCount"]),
    st.lists(rows, max_size=6),
)
payloads = st.lists(blocks, max_size=6)
PROPERTY_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(payloads)
def test_row_count_equals_sum_of_information_lengths(payload: list[dict[str, Any]]) -> None:
    expected = sum(len(block["information"]) for block in payload)
    frame = to_dataframe(payload)

    assert len(frame) == expected
    assert len(to_records(payload)) == expected
    assert frame["metric"].tolist() == [
        block["metricName"] for block in payload for _ in block["information"]
    ]


@PROPERTY_SETTINGS
@given(payloads)
def test_integer_counts_round_trip_exactly(payload: list[dict[str, Any]]) -> None:
    sent = [row for block in payload for row in block["information"]]
    frame = to_dataframe(payload)
    records = to_records(payload)

    totals = [int(row["totalSessionCount"]) for row in sent]
    assert frame["total_session_count"].tolist() == totals
    assert [r["total_session_count"] for r in records] == totals
    sessions = [int(row["sessionsCount"]) if "sessionsCount" in row else None for row in sent]
    assert [r["sessions_count"] for r in records] == sessions
    assert frame_as_records(frame) == records
    if any("newCount" in row for row in sent):
        # An unknown field is text (issue 11's rule): exact, as its JSON text.
        assert frame["new_count"].dtype == pd.StringDtype("pyarrow")
        new = [str(row["newCount"]) if "newCount" in row else None for row in sent]
        assert [r["new_count"] for r in records] == new


def test_mobile_app_fields_keep_their_types_even_when_values_look_like_integers() -> None:
    payload = [
        {
            "metricName": "Traffic",
            "information": [
                {"totalSessionCount": "12", "screensPerSessionPercentage": 2, "screensViews": "30"},
                {"totalSessionCount": "3", "screensPerSessionPercentage": 1, "screensViews": "4"},
            ],
        }
    ]
    frame = to_dataframe(payload)
    assert str(frame["screens_per_session_percentage"].dtype) == "float64"
    assert str(frame["screens_views"].dtype) == "Int64"
    assert frame["screens_views"].tolist() == [30, 4]
    records = to_records(payload)
    assert records[0]["screens_per_session_percentage"] == 2.0
    assert isinstance(records[0]["screens_per_session_percentage"], float)
    with pytest.raises(ClarityResponseError, match=r"screens_views|screensViews"):
        to_dataframe([{"metricName": "Traffic", "information": [{"screensViews": "many"}]}])
