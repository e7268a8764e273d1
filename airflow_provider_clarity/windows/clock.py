"""The provider's one "now": what the operator stamps as ``exported_at`` and counts with.

Everything in a task that asks for the current time (the call time, the stale-window check,
the quota ledger, the wait for a reset) asks ``now()``, so a test or a simulation can move
the whole task through days at once with ``use_clock``, as the emulator's ``clock=`` moves
Clarity's side. In production it is the system clock in UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def _system() -> datetime:
    return datetime.now(UTC)


_current: list[Clock] = [_system]


def now() -> datetime:
    """The current time as an aware UTC datetime (a naive clock reading is taken as UTC)."""
    moment = _current[-1]()
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@contextmanager
def use_clock(clock: Clock) -> Iterator[None]:
    """Make ``now()`` read ``clock`` inside the ``with`` block (same process only).

    For tests and simulations: a task run by ``dag.test()`` runs in this process and sees it.
    """
    _current.append(clock)
    try:
        yield
    finally:
        _current.remove(clock)
