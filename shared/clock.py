"""Time as a dependency: breakers, limiters and schedulers read a Clock, tests advance a FakeClock.

Routes take the current time as ``now: Now``: the clock given to ``create_app``
(``app.state.clock``), so a test's FakeClock reaches every route.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Protocol

from fastapi import Depends, Request


class Clock(Protocol):
    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock that moves only when a test says so."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._monotonic = 1_000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._monotonic += seconds


SYSTEM_CLOCK = SystemClock()


async def _now(request: Request) -> datetime:  # async: FastAPI runs a plain def dependency in a thread
    return request.app.state.clock.now()


Now = Annotated[datetime, Depends(_now)]
