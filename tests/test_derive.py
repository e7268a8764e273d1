"""derive.roll_up: a derived breakdown equals what Clarity answers directly, or is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_clarity.derive import DerivedPayload, roll_up, validate_roll_up
from airflow_provider_clarity.exceptions import ClarityRequestError, ClarityResponseError
from airflow_provider_clarity.normalize import to_dataframe
from airflow_provider_clarity.testing import ClarityEmulator
from airflow_provider_clarity.testing.answers import WireStyle, answer
from airflow_provider_clarity.testing.population import EVENTS, Population, Session

AT = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)
PROJECT = "derive-project"
SHARES = {
    "pagesPerSessionPercentage",
    "screensPerSessionPercentage",
    "sessionsWithMetricPercentage",
    "sessionsWithoutMetricPercentage",
    "averageScrollDepth",
}
SECONDS = {"totalTime", "activeTime"}
USERS = {"distinctUserCount", "distantUserCount"}
KEYS = {"URL": "Url", "OS": "Os"}


class FixedClock:
    def __call__(self) -> datetime:
        return AT


def fetch(emulator: ClarityEmulator, token: str, *dimensions: str) -> list[dict[str, Any]]:
    """One real HTTP call, as a client makes it."""
    params = {"numOfDays": "1"}
    params.update({f"dimension{i}": d for i, d in enumerate(dimensions, start=1)})
    response = requests.get(
        emulator.endpoint_url,
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 200
    payload: list[dict[str, Any]] = response.json()
    return payload


def assert_same_answer(
    derived: list[dict[str, Any]], direct: list[dict[str, Any]], dimensions: tuple[str, ...]
) -> int:
    """Every derivable field equals the direct answer; returns how many fields were compared."""
    keys = [KEYS.get(d, d) for d in dimensions]
    assert [b["metricName"] for b in derived] == [b["metricName"] for b in direct]
    compared = 0
    for mine, theirs in zip(derived, direct, strict=True):
        name = mine["metricName"]
        want = {tuple(r[k] for k in keys): r for r in theirs["information"]}
        got = {tuple(r[k] for k in keys): r for r in mine["information"]}
        assert got.keys() == want.keys(), name
        for group, row in got.items():
            expected = want[group]
            for field, value in row.items():
                if field in keys:
                    continue
                if field in USERS:
                    assert value is None, "distinct users cannot be derived"
                    continue
                if value is None or field not in expected:
                    continue  # left empty: a source row lacked the field
                compared += 1
                if field in SHARES:
                    assert abs(value - expected[field]) <= 0.01 + 1e-9, (name, group, field)
                elif field in SECONDS:
                    assert abs(int(value) - int(expected[field])) <= 1, (name, group, field)
                else:
                    assert value == expected[field], (name, group, field)
    return compared


@pytest.fixture(scope="module")
def emulator() -> Any:
    # Module-wide, so each parametrised case spends two of its many calls.
    with ClarityEmulator(clock=FixedClock(), missing_fields=False, daily_limit=100) as emu:
        emu.configure_project(PROJECT, url_count=150, missing_fields=False)
        yield emu


@pytest.fixture(scope="module")
def token(emulator: ClarityEmulator) -> str:
    return emulator.issue_token(PROJECT)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (("Device", "OS"), ("Device",)),
        (("Device", "OS"), ("OS",)),
        (("Device", "OS"), ()),
        (("Browser", "Device", "Channel"), ("Browser", "Channel")),
        (("Browser", "Device", "Channel"), ("Device",)),
        (("Country", "Device"), ("Country",)),
        (("Source", "Medium", "Campaign"), ("Medium",)),
        (("URL", "Device"), ("URL",)),
    ],
)
def test_derived_breakdown_equals_the_direct_answer_over_http(
    emulator: ClarityEmulator,
    token: str,
    source: tuple[str, ...],
    target: tuple[str, ...],
) -> None:
    fine = fetch(emulator, token, *source)
    direct = fetch(emulator, token, *target)
    if not target:
        direct = direct[:9]  # the snapshot's 7 extra blocks are not derived

    derived = roll_up(fine, source, target)

    assert assert_same_answer(derived, direct, target) > 20
    assert derived.derived_from == source
    assert derived.dimensions == target
    assert derived.empty_fields == ("distinctUserCount",)


def test_fields_a_source_row_lacks_are_left_empty(emulator: ClarityEmulator) -> None:
    emulator.configure_project("sparse", missing_fields=True)
    fine = emulator.payload("sparse", dimensions=("Country", "Device"))
    direct = emulator.payload("sparse", dimensions=("Country",))

    derived = roll_up(fine, ["Country", "Device"], ["Country"])

    assert assert_same_answer(derived, direct, ("Country",)) > 100
    click_rows = [r for b in derived[:6] for r in b["information"]]
    assert any(v is None for r in click_rows for k, v in r.items() if k != "Country")
    assert len(derived.empty_fields) > 1


def test_derived_payload_normalises_and_says_where_it_came_from(
    emulator: ClarityEmulator, token: str
) -> None:
    derived = roll_up(fetch(emulator, token, "Device", "OS"), "Device,OS", ["device"])
    frame = to_dataframe(derived)

    assert isinstance(derived, DerivedPayload) and isinstance(derived, list)
    assert derived.source == "Device,OS"
    assert json.loads(json.dumps(derived)) == list(derived)
    traffic = frame[frame["metric"] == "Traffic"]
    assert traffic["distinct_user_count"].isna().all()
    assert str(traffic["total_session_count"].dtype) == "Int64"
    assert set(traffic["device"].dropna()) <= {"PC", "Mobile", "Tablet", "Other"}
    assert frame["os"].isna().all()


def test_counts_stay_strings_and_dimension_keys_keep_clarity_spelling(
    emulator: ClarityEmulator, token: str
) -> None:
    emulator.configure_project("small-site", url_count=40, missing_fields=False)
    fine = fetch(emulator, emulator.issue_token("small-site"), "URL", "OS", "Device")

    derived = roll_up(fine, ["URL", "OS", "Device"], ["URL", "OS"])

    for b in derived:
        for row in b["information"]:
            assert "Url" in row and "Os" in row and "Device" not in row
            for field in ("totalSessionCount", "sessionsCount", "subTotal", "totalTime"):
                if field in row:
                    assert row[field] == 0 or (isinstance(row[field], str) and row[field].isdigit())


def test_mixed_vendor_spellings_roll_up_under_the_live_names() -> None:
    emu = ClarityEmulator(clock=FixedClock(), vendor_spelling="mixed", missing_fields=False)
    fine = emu.payload(PROJECT, dimensions=("Device", "Browser"))

    traffic = roll_up(fine, ["Device", "Browser"], ["Device"])[7]["information"]

    assert all("distinctUserCount" in r and "distantUserCount" not in r for r in traffic)
    assert all(isinstance(r["pagesPerSessionPercentage"], float) for r in traffic)


def test_mobile_app_answers_roll_up_too() -> None:
    emu = ClarityEmulator(clock=FixedClock(), missing_fields=False)
    emu.configure_project("app", mobile_app=True, url_count=40, missing_fields=False)
    fine = emu.payload("app", dimensions=("Device", "Country"))
    direct = emu.payload("app", dimensions=("Device",))

    derived = roll_up(fine, ["Device", "Country"], ["Device"])

    assert assert_same_answer(derived, direct, ("Device",)) > 20
    assert "screensViews" in derived[0]["information"][0]


def test_an_empty_answer_rolls_up_to_empty_blocks() -> None:
    emu = ClarityEmulator()
    emu.configure_project("quiet", traffic="empty")
    fine = emu.payload("quiet", dimensions=("Device", "OS"))

    derived = roll_up(fine, ["Device", "OS"], ["Device"])

    assert list(derived) == fine


def test_a_count_the_typed_table_refuses_is_not_summed_either() -> None:
    fine = ClarityEmulator().payload("spaced", dimensions=("Device", "OS"))
    traffic = next(b for b in fine if b["metricName"] == "Traffic")["information"]
    row = traffic[0]
    row["totalSessionCount"] = f" {row['totalSessionCount']}"
    with pytest.raises(ClarityResponseError, match="totalSessionCount"):
        to_dataframe(fine)

    derived = roll_up(fine, ["Device", "OS"], ["Device"])

    rolled = next(b for b in derived if b["metricName"] == "Traffic")["information"]
    (target,) = [r for r in rolled if r["Device"] == row["Device"]]
    assert target["totalSessionCount"] is None
    assert "totalSessionCount" in derived.empty_fields


# ---------------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    ("source", "target", "message"),
    [
        (["URL", "Device"], ["Device"], "URL cannot be summed out"),
        (["URL"], [], "URL cannot be summed out"),
        (["Device"], ["OS"], "can only remove dimensions"),
        (["Device", "Region"], ["Device"], "'Region', which is not a Clarity dimension"),
        (["Device", "device"], ["Device"], "twice"),
        ([], [], "from_dimensions is empty"),
        (["Device", "OS", "Browser", "Country"], ["Device"], "at most 3"),
    ],
)
def test_unsound_roll_ups_are_refused_before_reading_data(
    source: list[str], target: list[str], message: str
) -> None:
    with pytest.raises(ClarityRequestError, match=message):
        validate_roll_up(source, target)
    with pytest.raises(ClarityRequestError, match=message):
        roll_up([], source, target)


def test_a_block_at_the_row_cap_is_refused() -> None:
    emu = ClarityEmulator(clock=FixedClock())
    emu.configure_project("big", url_count=1200)
    fine = emu.payload("big", dimensions=("URL", "Device"))
    assert len(fine[0]["information"]) == 1000

    with pytest.raises(ClarityRequestError, match="cap of 1000: it may have been cut short"):
        roll_up(fine, ["URL", "Device"], ["URL"])


def test_a_response_capped_as_a_whole_is_refused() -> None:
    emu = ClarityEmulator(clock=FixedClock(), row_cap_scope="response")
    emu.configure_project("wide", url_count=100)
    fine = emu.payload("wide", dimensions=("URL", "Device"))
    assert sum(len(b["information"]) for b in fine) == 1000
    assert max(len(b["information"]) for b in fine) < 1000

    with pytest.raises(ClarityRequestError, match="exactly 1000 rows in all"):
        roll_up(fine, ["URL", "Device"], ["URL"])


def test_the_no_dimension_snapshot_is_refused_as_a_source() -> None:
    snapshot = ClarityEmulator(clock=FixedClock()).payload(PROJECT)

    with pytest.raises(ClarityRequestError, match="no-dimension snapshot"):
        roll_up(snapshot, ["Device", "OS"], ["Device"])


def test_rows_must_carry_exactly_the_declared_dimensions() -> None:
    fine = ClarityEmulator(clock=FixedClock()).payload(PROJECT, dimensions=("Device", "OS"))

    with pytest.raises(ClarityRequestError, match="lacks Browser"):
        roll_up(fine, ["Device", "OS", "Browser"], ["Device"])
    with pytest.raises(ClarityRequestError, match="also has OS"):
        roll_up(fine, ["Device"], [])


@pytest.mark.parametrize(
    "payload",
    [{"metricName": "Traffic"}, [{"metricName": "Traffic", "information": "x"}], [1]],
)
def test_something_that_is_not_a_clarity_answer_is_refused(payload: Any) -> None:
    with pytest.raises(ClarityRequestError, match="Clarity's answer"):
        roll_up(payload, ["Device"], [])


# ---------------------------------------------------------------------- property tests
VALUES = {
    "Browser": ["Chrome", "Edge", None],
    "Device": ["PC", "Mobile", None],
    "Country": ["Chile", "Peru", "Ghana", None],
    "OS": ["Windows", "iOS", None],
    "Source": ["google", None],
    "Medium": ["organic", "cpc", None],
    "Campaign": ["spring", None],
    "Channel": ["Direct", "Paid search"],
}
URLS = ["https://a.example/", "https://a.example/b", "https://a.example/c?x=1"]


@st.composite
def sessions(draw: st.DrawFn) -> Session:
    bot = draw(st.booleans())
    human = not bot
    return Session(
        time=draw(st.integers(0, 86400)),
        user=draw(st.integers(0, 12)),
        attrs={d: draw(st.sampled_from(v)) for d, v in VALUES.items()},
        pages=tuple(draw(st.lists(st.sampled_from(URLS), max_size=4))),
        bot=bot,
        recorded=draw(st.booleans()) if human else True,
        scroll=draw(st.floats(0, 100)) if human else 0.0,
        total_time=draw(st.floats(0, 900)) if human else 0.0,
        active_time=draw(st.floats(0, 300)) if human else 0.0,
        events={e: draw(st.integers(0, 3)) if human else 0 for e in EVENTS},
    )


@st.composite
def roll_ups(draw: st.DrawFn) -> tuple[tuple[str, ...], tuple[str, ...]]:
    source = tuple(
        draw(st.lists(st.sampled_from([*VALUES, "URL"]), min_size=1, max_size=3, unique=True))
    )
    kept = [d for d in source if d == "URL" or draw(st.booleans())]
    return source, tuple(kept)


@settings(max_examples=80, deadline=None)
@given(st.lists(sessions(), min_size=1, max_size=60), roll_ups())
def test_roll_up_of_any_population_matches_the_direct_answer(
    people: list[Session], dims: tuple[tuple[str, ...], tuple[str, ...]]
) -> None:
    source, target = dims
    population = Population.from_sessions(people)
    style = WireStyle(salt="property")

    derived = roll_up(answer(population, source, style), source, target)

    direct = answer(population, target, style)[:9]
    assert_same_answer(derived, direct, target)


@settings(max_examples=40, deadline=None)
@given(st.lists(sessions(), min_size=1, max_size=40), st.sampled_from(list(VALUES)))
def test_rolling_up_in_two_steps_equals_one_step_for_counts(
    people: list[Session], extra: str
) -> None:
    population = Population.from_sessions(people)
    source = ("Device", extra) if extra != "Device" else ("Device", "OS")
    fine = answer(population, (*source, "URL"))

    one_step = roll_up(fine, (*source, "URL"), ("URL",))
    two_steps = roll_up(
        roll_up(fine, (*source, "URL"), ("URL", "Device")), ("URL", "Device"), ("URL",)
    )

    counts = {"totalSessionCount", "sessionsCount", "subTotal"}
    for a, b in zip(one_step, two_steps, strict=True):
        assert {
            r["Url"]: {k: v for k, v in r.items() if k in counts} for r in a["information"]
        } == {r["Url"]: {k: v for k, v in r.items() if k in counts} for r in b["information"]}
