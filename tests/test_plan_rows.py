"""``plan.rows``: bounds on a breakdown's rows from the answers Clarity gave."""

from __future__ import annotations

from typing import Any

from airflow_provider_clarity.plan.rows import RowCounts


def _answer(rows: int, blocks: int = 3) -> list[dict[str, Any]]:
    return [{"metricName": f"m{b}", "information": [{}] * rows} for b in range(blocks)]


def _request(days: int, *dims: str) -> dict[str, str]:
    return {"numOfDays": str(days), **{f"dimension{i}": d for i, d in enumerate(dims, 1)}}


def test_a_coarser_breakdown_is_bounded_by_a_finer_one_and_a_merge_by_the_product() -> None:
    counts = RowCounts()
    counts.add(_request(1, "Device", "OS"), _answer(30))
    counts.add(_request(1, "Browser"), _answer(11))
    counts.add(_request(1, "Browser"), _answer(9))  # the most rows of a request is kept

    assert counts.estimate(frozenset({"Device"}), 1) == (30, "Device 30 (in Device,OS)")
    assert counts.estimate(frozenset({"Browser", "Device", "OS"}), 1) == (
        330,
        "Browser 11 x Device,OS 30",
    )
    assert counts.estimate(frozenset({"Browser", "Country"}), 1) is None  # Country unmeasured
    assert counts.answers == 3 and counts.dimensions == {"Browser", "Device", "OS"}


def test_a_capped_answer_bounds_nothing_and_longer_windows_bound_shorter_ones() -> None:
    counts = RowCounts()
    counts.add(_request(1, "URL"), _answer(1000))
    counts.add(_request(1, "Country"), _answer(250, blocks=4))  # 1000 in all: may be capped
    counts.add(_request(3, "Device"), _answer(5))
    counts.add(_request(1, "OS"), {"not": "blocks"})

    assert counts.estimate(frozenset({"URL"}), 1) is None
    assert counts.estimate(frozenset({"Country"}), 1) is None
    assert counts.estimate(frozenset({"Device"}), 1) == (5, "Device 5")
    assert counts.estimate(frozenset({"Device"}), 3) == (5, "Device 5")
    assert counts.estimate(frozenset({"OS"}), 1) is None and counts.unreadable == 1
