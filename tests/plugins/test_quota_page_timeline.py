"""The quota page's SVG timeline: every call stays visible, even several in one minute."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_clarity.plugins.page_data import project_report
from airflow_provider_clarity.plugins.quota_page.timeline import timeline
from airflow_provider_clarity.quota import MemoryLedgerStore, QuotaLedger

NOON = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"


def _svg_with_calls(moments: list[datetime]) -> ET.Element:
    store = MemoryLedgerStore()
    for n, at in enumerate(moments):
        ledger = QuotaLedger(
            "demo-project", store=store, clock=lambda at=at: at, caller=f"d/t{n}/manual__1/-1"
        )
        ledger.before_call(None)
        ledger.after_call(None, "200")
    assert store.data is not None
    svg = timeline(project_report(store.data, NOON + timedelta(hours=1)), NOON)
    return ET.fromstring(svg.replace("<svg ", f'<svg xmlns="{SVG[1:-1]}" ', 1))


def _seen_calls(root: ET.Element) -> tuple[int, int]:
    """(markers a reader can tell apart, spots drawn): a spot counts 1, or its "xN" label."""
    spots = {(c.get("cx"), c.get("cy")) for c in root.iter(f"{SVG}circle")}
    labels = list(root.iter(f"{SVG}text"))
    counted = {}
    for label in labels:
        if label.get("class") != "stack-count":
            continue
        x, y = float(label.get("x", 0)) - 9, float(label.get("y", 0)) - 4
        spot = (f"{x:.1f}", f"{y:.1f}")
        assert spot in spots, f"a count label beside no marker: {spot} not in {spots}"
        counted[spot] = int(label.get("data-count", 0))
    return sum(counted.get(spot, 1) for spot in spots), len(spots)


@pytest.mark.parametrize("calls", [1, 4, 5, 9])
def test_calls_in_one_minute_stay_distinguishable(calls: int) -> None:
    minute = NOON.replace(hour=9)
    root = _svg_with_calls([minute + timedelta(seconds=5 * n) for n in range(calls)])

    seen, spots = _seen_calls(root)

    assert seen == calls
    assert spots == min(calls, 4)  # four lanes stacked; more become a counted top marker
    assert len([g for g in root.iter(f"{SVG}g") if g.get("class") == "call"]) == calls


def test_calls_far_apart_share_the_bottom_lane_and_carry_no_count() -> None:
    root = _svg_with_calls([NOON.replace(hour=h) for h in (1, 4, 7, 10)])

    seen, spots = _seen_calls(root)

    assert (seen, spots) == (4, 4)
    assert {c.get("cy") for c in root.iter(f"{SVG}circle")} == {"80.0"}
    assert not [t for t in root.iter(f"{SVG}text") if t.get("class") == "stack-count"]
