"""Connection extras -> frozen ``QuotaSettings``, the ``Window`` enum, and the reset rules.

The one place that decides when a Clarity call stops counting and when the quota is
back. The hook reads the settings from its connection, the ledger counts with them, and the
hook's 429 message, the ledger's refusals, the operator's wait and the sensor all use the
same ``next_day_start`` / ``reset_after_429``, so one run never shows two reset times.

Why the margins: the ledger records a call before it reaches Clarity, and its clock may
differ from Clarity's, so it must never declare a reset before Clarity agrees. A call
counts from its record time until ``(done_at or at) + margin`` has left the window, and a
new UTC day starts for the ledger ``margin`` seconds after midnight (60 s for ``utc_day``,
5 s for ``rolling`` by default).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from airflow_provider_clarity.exceptions import ClarityRequestError
from airflow_provider_clarity.utils.numbers import whole_number
from airflow_provider_clarity.windows.utc import utc_text

#: The connection every Clarity operator, sensor and hook uses when none is named.
DEFAULT_CONN_ID = "clarity_default"
DEFAULT_DAILY_LIMIT = 10
#: How long the ledger lets other tasks wait after Clarity failed every attempt with a 5xx.
DEFAULT_DEGRADED_COOLDOWN_SECONDS = 1800
#: How old another task's answer to the same request may be and still be reused (1 h: below
#: the 2.4 h spacing of 10 calls a day, so a schedule that fits the quota never reuses its own
#: previous run; see docs/ten-calls.md).
DEFAULT_MAX_SNAPSHOT_AGE_SECONDS = 3600
KEEP_AT_LEAST = timedelta(hours=48)
#: The longest window, margin or cool-down that makes sense (a year): past it the ledger's
#: time arithmetic could overflow ``datetime``, and a stored document asking for it is damage.
LONGEST_SECONDS = 366 * 86400


class Window(StrEnum):
    """How Clarity's daily quota is assumed to reset."""

    UTC_DAY = "utc_day"
    """The count restarts at 00:00 UTC (Clarity's behaviour as far as is known)."""
    ROLLING = "rolling"
    """Each call counts for ``rolling_window_seconds`` after it was made."""

    @property
    def default_margin_seconds(self) -> float:
        """The reset margin used when none is configured."""
        return 60.0 if self is Window.UTC_DAY else 5.0


# The names ``to_json`` writes, which ``from_stored`` reads back.
_STORED = (
    "daily_limit",
    "reserve",
    "window",
    "rolling_window_seconds",
    "reset_margin_seconds",
    "degraded_cooldown_seconds",
)


def _midnight(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _finite(value: float) -> bool:
    """``math.isfinite`` that answers ``False`` for an int too large for a float."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


@dataclass(frozen=True)
class QuotaSettings:
    """One Clarity project's quota: its limit, the calls kept back, and how the window runs.

    :raises ValueError: on a setting that makes no sense (negative reserve, unknown window...).
    """

    project_id: str
    daily_limit: int = DEFAULT_DAILY_LIMIT
    reserve: int = 0
    window: Window = Window.UTC_DAY
    rolling_window_seconds: int = 86400
    reset_margin_seconds: float = field(default=-1.0)
    degraded_cooldown_seconds: int = DEFAULT_DEGRADED_COOLDOWN_SECONDS
    max_snapshot_age_seconds: int = DEFAULT_MAX_SNAPSHOT_AGE_SECONDS

    def __post_init__(self) -> None:
        if not str(self.project_id):
            raise ValueError("project_id must not be empty")
        try:
            window = Window(self.window)
        except ValueError:
            names = ", ".join(w.value for w in Window)
            raise ValueError(f"Unknown quota window {self.window!r}; use one of {names}") from None
        longest = f"between {{}} and {LONGEST_SECONDS} (a year)"
        checks = {
            "daily_limit": (self.daily_limit, 1, None, "at least 1"),
            "reserve": (self.reserve, 0, None, "0 or more"),
            "rolling_window_seconds": (
                self.rolling_window_seconds,
                1,
                LONGEST_SECONDS,
                longest.format(1),
            ),
            "degraded_cooldown_seconds": (
                self.degraded_cooldown_seconds,
                0,
                LONGEST_SECONDS,
                longest.format(0),
            ),
            "max_snapshot_age_seconds": (self.max_snapshot_age_seconds, 0, None, "0 or more"),
        }
        numbers: dict[str, int] = {}
        for name, (value, minimum, maximum, text) in checks.items():
            number = whole_number(value)
            if number is None or number < minimum or (maximum and number > maximum):
                raise ValueError(f"{name} must be {text}, got {value!r}")
            numbers[name] = number
        margin = self.reset_margin_seconds
        if margin == -1.0:
            margin = window.default_margin_seconds
        if (
            isinstance(margin, bool)
            or not isinstance(margin, int | float)
            or not 0 <= margin <= LONGEST_SECONDS  # also refuses NaN
        ):
            raise ValueError(f"reset_margin_seconds must be {longest.format(0)}, got {margin!r}")
        object.__setattr__(self, "project_id", str(self.project_id))
        object.__setattr__(self, "window", window)
        object.__setattr__(self, "reset_margin_seconds", float(margin))
        for name, number in numbers.items():
            object.__setattr__(self, name, number)

    # ------------------------------------------------------------------ from a connection

    @classmethod
    def from_extras(
        cls,
        extras: Mapping[str, Any],
        *,
        conn_id: str,
        conn_type: str = "clarity",
        default_project: str | None = None,
    ) -> QuotaSettings:
        """Read ``project_id``, ``daily_limit``, ``reserve``, ``quota_window``,
        ``rolling_window_seconds``, ``degraded_cooldown_seconds`` and
        ``max_snapshot_age_seconds`` from a connection's extras. Without ``project_id``:
        ``default_project`` (the project the token names), else the connection id.

        :raises ClarityRequestError: naming the extra and how to fix it.
        """

        def extra(name: str) -> Any:
            return connection_extra(extras, name, conn_type=conn_type)

        def number(name: str, default: int, minimum: int) -> int:
            value = extra(name)
            if value is None or (isinstance(value, str) and not value.strip()):
                return default
            parsed = whole_number(value)
            if parsed is None or parsed < minimum:
                raise ClarityRequestError(
                    f"Connection '{conn_id}': extra {name!r} must be a whole number "
                    f">= {minimum}; got {value!r}. Fix it in the connection's extras, or remove "
                    f"it to use the default ({default})."
                )
            return parsed

        project = extra("project_id")
        project_text = str(project).strip() if project is not None else ""
        raw_window = extra("quota_window")
        window_text = str(raw_window).strip().lower() if raw_window is not None else ""
        if window_text and window_text not in {w.value for w in Window}:
            raise ClarityRequestError(
                f"Connection '{conn_id}': extra 'quota_window' must be 'utc_day' or "
                f"'rolling'; got {raw_window!r}. Fix it in the connection's extras."
            )
        return cls(
            project_id=project_text or default_project or conn_id,
            daily_limit=number("daily_limit", DEFAULT_DAILY_LIMIT, 1),
            reserve=number("reserve", 0, 0),
            window=Window(window_text or Window.UTC_DAY),
            rolling_window_seconds=number("rolling_window_seconds", 86400, 1),
            degraded_cooldown_seconds=number(
                "degraded_cooldown_seconds", DEFAULT_DEGRADED_COOLDOWN_SECONDS, 0
            ),
            max_snapshot_age_seconds=number(
                "max_snapshot_age_seconds", DEFAULT_MAX_SNAPSHOT_AGE_SECONDS, 0
            ),
        )

    @classmethod
    def from_stored(cls, project_id: str, stored: Any) -> QuotaSettings | None:
        """The settings a ledger document's ``settings`` object holds (see ``to_json``);
        ``None`` when it holds none (absent, or an empty object).

        Strict, because the document is data anyone with Variable access can edit: whole
        numbers are JSON integers (never a bool, a float or a string), the margin a finite
        number, the window a known name, and no other key.

        :raises ValueError: stored settings this provider does not write, saying which.
        """
        if stored is None:
            return None
        if not isinstance(stored, Mapping):
            raise ValueError(f"the settings are {stored!r}, not an object")
        unknown = sorted(str(name) for name in stored if name not in _STORED)
        if unknown:
            raise ValueError(f"unknown setting(s) {', '.join(map(repr, unknown))}")
        for name, value in stored.items():
            if name == "window":
                valid = isinstance(value, str) and value in {w.value for w in Window}
            elif name == "reset_margin_seconds":
                valid = type(value) in (int, float) and _finite(value) and value >= 0
            else:
                valid = type(value) is int
            if not valid:
                raise ValueError(f"{name} is {value!r}, which this provider never writes")
        return cls(project_id, **stored) if stored else None

    def with_reserve(self, reserve: int | None) -> QuotaSettings:
        """These settings with a task's own ``reserve`` (``None`` keeps the connection's)."""
        return self if reserve is None else replace(self, reserve=reserve)

    def to_json(self) -> dict[str, Any]:
        """The ``settings`` object of the ledger document (``LEDGER_DOCUMENT_VERSION``)."""
        return {
            "daily_limit": self.daily_limit,
            "reserve": self.reserve,
            "window": self.window.value,
            "rolling_window_seconds": self.rolling_window_seconds,
            "reset_margin_seconds": self.reset_margin_seconds,
            "degraded_cooldown_seconds": self.degraded_cooldown_seconds,
        }

    # ------------------------------------------------------------------ the reset rules

    @property
    def capacity(self) -> int:
        """Calls per window that Airflow may spend: ``daily_limit - reserve`` (at least 0)."""
        return max(0, self.daily_limit - self.reserve)

    @property
    def margin(self) -> timedelta:
        return timedelta(seconds=self.reset_margin_seconds)

    @property
    def degraded_cooldown(self) -> timedelta:
        return timedelta(seconds=self.degraded_cooldown_seconds)

    @property
    def window_length(self) -> timedelta:
        return timedelta(seconds=self.rolling_window_seconds)

    def day_start(self, moment: datetime) -> datetime:
        """Start of the ledger's UTC day at ``moment``; it begins ``margin`` after midnight."""
        return _midnight(moment - self.margin)

    def window_start(self, moment: datetime) -> datetime:
        """When the UTC-day window holding ``moment`` began: its midnight plus the margin."""
        return self.day_start(moment) + self.margin

    def next_day_start(self, moment: datetime, *, margin: bool = True) -> datetime:
        """When the next UTC day begins for the ledger (``margin=False``: for Clarity)."""
        start = self.day_start(moment) + timedelta(days=1)
        return start + self.margin if margin else start

    def counts_at(self, counted_until: datetime, moment: datetime) -> bool:
        """Whether a call Clarity may have counted until ``counted_until`` (its end plus
        margin) still counts against the quota at ``moment``."""
        if self.window is Window.ROLLING:
            return moment < counted_until + self.window_length
        return counted_until >= self.day_start(moment)

    def reset_after_429(self, now: datetime, *, margin: bool = True) -> datetime:
        """When a call is certainly free again after Clarity answered 429 at ``now``.

        ``utc_day``: the next day start. ``rolling``: a whole window after the 429, the only
        moment at which calls made outside Airflow have certainly left the window. With
        ``margin=False`` it is Clarity's own assumed reset, which the hook reports; the
        ledger, which waits, always adds its margin.
        """
        extra = self.margin if margin else timedelta(0)
        if self.window is Window.ROLLING:
            return now + self.window_length + extra
        return self.next_day_start(now, margin=False) + extra

    def keep_for(self) -> timedelta:
        """How long the ledger keeps a call: 48 h, or the rolling window plus margins."""
        if self.window is Window.ROLLING:
            return max(KEEP_AT_LEAST, self.window_length + 2 * self.margin)
        return KEEP_AT_LEAST

    def describe_window(self, now: datetime) -> str:
        """One line for reports, e.g. ``utc_day, resets 00:00 UTC (+60 s margin); ...``."""
        margin = f"{self.reset_margin_seconds:g} s"
        if self.window is Window.ROLLING:
            return f"rolling {self.rolling_window_seconds} s (+{margin} margin)"
        return (
            f"utc_day, resets 00:00 UTC (+{margin} margin); "
            f"this window began {utc_text(self.window_start(now))}"
        )


def connection_extra(extras: Mapping[str, Any], name: str, *, conn_type: str = "clarity") -> Any:
    """One connection extra; forms of older Airflow versions stored it prefixed."""
    if not isinstance(extras, Mapping):
        return None
    value = extras.get(name)
    return extras.get(f"extra__{conn_type}__{name}") if value is None else value
