"""ClarityQuotaSensor: poke, reschedule straight to the reset, deferral and resumption."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import PokeReturnValue

from airflow_provider_clarity.exceptions import ClarityError
from airflow_provider_clarity.quota import MemoryLedgerStore, QuotaLedger
from airflow_provider_clarity.sensors.quota import ClarityQuotaSensor
from airflow_provider_clarity.version_compat import (
    AirflowFailException,
    AirflowRescheduleException,
    TaskDeferred,
)

NOW = datetime(2025, 3, 14, 22, 0, 0, tzinfo=UTC)
RESET = datetime(2025, 3, 15, 0, 1, 0, tzinfo=UTC)  # next midnight + the 60 s margin


class FakeTI:
    def get_first_reschedule_date(self, context: Any) -> None:
        return None


CONTEXT: Any = {"ti": FakeTI()}


@pytest.fixture
def store() -> MemoryLedgerStore:
    return MemoryLedgerStore()


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """Freeze Airflow's clock (used by BaseSensorOperator) at NOW."""
    monkeypatch.setattr("airflow.sdk.timezone.utcnow", lambda: NOW)
    return NOW


def ledger(store: MemoryLedgerStore, **kwargs: Any) -> QuotaLedger:
    return QuotaLedger("demo-project", store=store, clock=lambda: NOW, caller="x/y/z/-1", **kwargs)


def spend(store: MemoryLedgerStore, n: int) -> None:
    book = ledger(store)
    for _ in range(n):
        book.before_call(None)
        book.after_call(None, "200")


def make_sensor(store: MemoryLedgerStore, **kwargs: Any) -> ClarityQuotaSensor:
    sensor = ClarityQuotaSensor(task_id="wait_for_quota", **kwargs)

    def _make_ledger() -> QuotaLedger:
        return ledger(store, reserve=0 if sensor.reserve is None else sensor.reserve)

    sensor._make_ledger = _make_ledger  # type: ignore[method-assign]
    return sensor


def test_defaults_are_reschedule_mode_and_keyword_only():
    sensor = ClarityQuotaSensor(task_id="t")
    assert sensor.mode == "reschedule"
    assert sensor.poke_interval == 300
    assert sensor.template_fields == ("clarity_conn_id", "calls")
    with pytest.raises(TypeError):
        ClarityQuotaSensor("clarity_default", task_id="t")  # type: ignore[call-arg]


def test_poke_succeeds_while_enough_calls_remain_and_returns_them(store):
    spend(store, 7)
    sensor = make_sensor(store, calls="3")  # rendered templates are strings
    result = sensor.poke({})
    assert isinstance(result, PokeReturnValue)
    assert result.is_done
    assert result.xcom_value == 3


def test_poke_fails_when_too_few_remain(store):
    spend(store, 8)
    assert make_sensor(store, calls=3).poke({}) is False
    assert make_sensor(store, calls=2).poke({})


def test_task_level_reserve_is_honoured(store):
    spend(store, 8)
    assert make_sensor(store, calls=1, reserve=2).poke({}) is False


def test_reschedules_straight_to_the_next_reset(store, frozen):
    spend(store, 10)
    sensor = make_sensor(store)
    with pytest.raises(AirflowRescheduleException) as err:
        sensor.execute(CONTEXT)
    assert err.value.reschedule_date == RESET


def test_a_reschedule_never_passes_the_sensor_timeout(store, frozen):
    spend(store, 10)
    sensor = make_sensor(store, timeout=600)
    with pytest.raises(AirflowRescheduleException) as err:
        sensor.execute(CONTEXT)
    assert err.value.reschedule_date == NOW + timedelta(seconds=600)


def test_reschedule_mode_succeeds_without_waiting_when_calls_remain(store, frozen):
    spend(store, 9)
    assert make_sensor(store).execute(CONTEXT) == 1


def test_deferrable_defers_to_a_datetime_trigger_at_the_reset(store):
    spend(store, 10)
    sensor = make_sensor(store, deferrable=True, timeout=7200)
    with pytest.raises(TaskDeferred) as err:
        sensor.execute({})
    trigger = err.value.trigger
    assert isinstance(trigger, DateTimeTrigger)
    assert trigger.moment == RESET
    assert err.value.method_name == "execute_complete"
    assert err.value.timeout == timedelta(seconds=7200)
    assert trigger.serialize()[0] == "airflow.providers.standard.triggers.temporal.DateTimeTrigger"


def test_deferrable_does_not_defer_when_calls_remain(store):
    spend(store, 4)
    assert make_sensor(store, deferrable=True, calls=6).execute({}) == 6


def test_execute_complete_rechecks_the_ledger(store):
    sensor = make_sensor(store, deferrable=True, calls=2)
    assert sensor.execute_complete({}, event=RESET) == 10

    spend(store, 9)  # someone spent the calls while the task slept
    with pytest.raises(TaskDeferred) as err:
        sensor.execute_complete({}, event=RESET.isoformat())
    assert err.value.trigger.moment == RESET


@pytest.mark.parametrize("event", [None, {"status": "error"}, "not a time"])
def test_execute_complete_rejects_unexpected_events(store, event):
    with pytest.raises(ClarityError, match="unexpected trigger event"):
        make_sensor(store, deferrable=True).execute_complete({}, event=event)


def test_waiting_for_more_calls_than_airflow_may_ever_spend_fails_at_once(store):
    with pytest.raises(AirflowFailException, match="would wait forever"):
        make_sensor(store, calls=3, reserve=8).poke({})
    with pytest.raises(AirflowFailException, match="at least 1"):
        make_sensor(store, calls="none").poke({})


def test_the_sensor_builds_its_ledger_from_the_connection(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_CLARITY_QUOTA_TEST",
        json.dumps(
            {
                "conn_type": "clarity",
                "host": "http://127.0.0.1:9",
                "password": "unused",
                "extra": {
                    "project_id": "proj-7",
                    "daily_limit": "8",
                    "reserve": 1,
                    "quota_window": "rolling",
                    "rolling_window_seconds": 60,
                },
            }
        ),
    )
    sensor = ClarityQuotaSensor(task_id="t", clarity_conn_id="clarity_quota_test", reserve=3)
    book = sensor._make_ledger()
    assert (book.project_id, book.daily_limit, book.reserve, book.window) == (
        "proj-7",
        8,
        3,
        "rolling",
    )
    assert book.rolling_window_seconds == 60
    assert book.key == "clarity_quota__proj-7"
