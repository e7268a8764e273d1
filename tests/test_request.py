"""Loose user input -> a validated ClarityRequest: what is accepted, and what is refused and why."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from airflow_provider_clarity.exceptions import (
    ClarityRequestError,
)
from airflow_provider_clarity.hooks.clarity import (
    VALID_DIMENSIONS,
    ClarityRequest,
)

# ------------------------------------------------------------------ ClarityRequest.build


@pytest.mark.parametrize(
    ("num_of_days", "dimensions", "params"),
    [
        (1, (), {"numOfDays": "1"}),
        ("2", "OS", {"numOfDays": "2", "dimension1": "OS"}),
        (" 3 ", "os, device", {"numOfDays": "3", "dimension1": "OS", "dimension2": "Device"}),
        (1, ["url", "BROWSER"], {"numOfDays": "1", "dimension1": "URL", "dimension2": "Browser"}),
        (1, "['OS', 'Device']", {"numOfDays": "1", "dimension1": "OS", "dimension2": "Device"}),
        (1, "('Channel',)", {"numOfDays": "1", "dimension1": "Channel"}),
        (1, "[OS, Device]", {"numOfDays": "1", "dimension1": "OS", "dimension2": "Device"}),
        (1, "[]", {"numOfDays": "1"}),
        (1, None, {"numOfDays": "1"}),
        (1, ["OS", "os", "OS "], {"numOfDays": "1", "dimension1": "OS"}),
        (1, ["Country", "Country/Region"], {"numOfDays": "1", "dimension1": "Country"}),
    ],
)
def test_build_accepts_template_friendly_forms(
    num_of_days: Any, dimensions: Any, params: dict[str, str]
) -> None:
    assert ClarityRequest.build(num_of_days, dimensions).params() == params


@pytest.mark.parametrize("num_of_days", [0, 4, "4", "two", 1.5, 2.0, True, None, "", "-1"])
def test_build_rejects_num_of_days_outside_1_to_3(num_of_days: Any) -> None:
    with pytest.raises(ClarityRequestError, match="num_of_days must be 1, 2 or 3"):
        ClarityRequest.build(num_of_days)


@pytest.mark.parametrize(
    ("dimensions", "suggestion"),
    [
        ("Region", "Country"),
        (["Brwoser"], "Browser"),
        (["Devices"], "Device"),
        ("DeviceType", "Device"),
        ("PageURL", "URL"),
        ("Xyzzy", None),
    ],
)
def test_build_rejects_unknown_dimensions_with_valid_names_and_suggestion(
    dimensions: Any, suggestion: str | None
) -> None:
    with pytest.raises(ClarityRequestError) as info:
        ClarityRequest.build(1, dimensions)
    message = str(info.value)
    assert "Valid: " + ", ".join(VALID_DIMENSIONS) in message
    if suggestion:
        assert f"did you mean {suggestion!r}?" in message
    else:
        assert "did you mean" not in message


def test_region_message_reads_naturally() -> None:
    with pytest.raises(ClarityRequestError) as info:
        ClarityRequest.build(1, "Region")
    assert str(info.value).startswith(
        "Clarity has no dimension 'Region'; did you mean 'Country'? Valid: Browser, Device"
    )


@pytest.mark.parametrize(
    "dimensions",
    [
        ["OS", "Device", "URL", "Browser"],
        "OS,Device,URL,Browser",
        [1],
        {"OS": 1},
        ["OS", ""],
        "['OS'",
        "[['OS']]",
        "[1, 2]",
    ],
)
def test_build_rejects_malformed_dimension_lists(dimensions: Any) -> None:
    with pytest.raises(ClarityRequestError):
        ClarityRequest.build(1, dimensions)


def test_more_than_three_dimensions_says_the_limit() -> None:
    with pytest.raises(ClarityRequestError, match="at most 3 dimensions"):
        ClarityRequest.build(1, ["OS", "Device", "URL", "Browser"])


def test_duplicates_after_aliasing_do_not_count_towards_the_limit() -> None:
    request = ClarityRequest.build(1, ["Country", "country/region", "OS", "os", "URL"])
    assert request.dimensions == ("Country", "OS", "URL")


def test_country_region_alias_logs_why(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        request = ClarityRequest.build(1, "Country/Region")
    assert request.dimensions == ("Country",)
    assert "ignores 'Country/Region'" in caplog.text


def test_direct_construction_is_validated_too() -> None:
    assert ClarityRequest(2, ("OS",)).params() == {"numOfDays": "2", "dimension1": "OS"}
    for bad in [(4, ()), ("2", ()), (1, ("os",)), (1, ("OS", "OS")), (1, ["OS"])]:
        with pytest.raises(ClarityRequestError):
            ClarityRequest(*bad)  # type: ignore[arg-type]


def test_describe_is_short_and_readable() -> None:
    assert ClarityRequest.build(1, "OS,Device").describe() == "numOfDays=1 dimensions=OS,Device"
    assert ClarityRequest.build(3).describe() == "numOfDays=3 dimensions=none"
