"""Connection extras -> QuotaSettings: coerced, defaulted, older key forms read, garbage refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_clarity.exceptions import (
    ClarityRequestError,
)
from airflow_provider_clarity.hooks.clarity import (
    ClarityHook,
)
from tests.hooks.fixtures import CONN_ID, PROJECT


def test_settings_come_from_extras_and_are_coerced(
    set_connection: Callable[..., None], token: str
) -> None:
    set_connection(
        None,
        token,
        daily_limit="12",
        reserve=" 3 ",
        quota_window="Rolling",
        rolling_window_seconds="3600",
    )
    hook = ClarityHook(CONN_ID)
    assert hook.base_url == "https://www.clarity.ms"
    assert hook.project_id == PROJECT  # no project_id extra: the project the token names
    assert (hook.daily_limit, hook.reserve) == (12, 3)
    assert (hook.quota_window, hook.rolling_window_seconds) == ("rolling", 3600)


def test_settings_read_the_prefixed_keys_older_forms_saved(
    set_connection: Callable[..., None], token: str
) -> None:
    set_connection(
        None, token, extra__clarity__project_id="site-7", extra__clarity__daily_limit="7"
    )
    hook = ClarityHook(CONN_ID)
    assert (hook.project_id, hook.daily_limit) == ("site-7", 7)


def test_settings_defaults(set_connection: Callable[..., None], token: str) -> None:
    set_connection("", token, project_id="site-42")
    hook = ClarityHook(CONN_ID)
    assert hook.project_id == "site-42"
    assert (hook.daily_limit, hook.reserve) == (10, 0)
    assert (hook.quota_window, hook.rolling_window_seconds) == ("utc_day", 86400)


@pytest.mark.parametrize(
    ("extra", "setting"),
    [
        ({"daily_limit": "ten"}, "daily_limit"),
        ({"daily_limit": 0}, "daily_limit"),
        ({"daily_limit": True}, "daily_limit"),
        ({"reserve": "-1"}, "reserve"),
        ({"quota_window": "weekly"}, "quota_window"),
        ({"rolling_window_seconds": "1.5"}, "rolling_window_seconds"),
    ],
)
def test_garbage_settings_raise_request_error(
    set_connection: Callable[..., None], token: str, extra: dict[str, Any], setting: str
) -> None:
    set_connection(None, token, **extra)
    with pytest.raises(ClarityRequestError, match=f"Connection '{CONN_ID}'"):
        getattr(ClarityHook(CONN_ID), setting)
