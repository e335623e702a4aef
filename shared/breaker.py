"""A circuit breaker: stop calling an upstream that keeps failing, probe it now and then.

    closed ──(too many failures)──▶ open ──(reset_timeout elapsed)──▶ half-open
      ▲                                ▲                                 │
      └────────(a probe succeeds)──────┼─────────────────────────────────┤
                                       └────────(a probe fails)──────────┘

"Too many failures" is ``failure_threshold`` consecutive failures, or — when
``failure_rate`` is set — a failure share of at least ``failure_rate`` among at
least ``min_calls`` calls in the last ``window`` seconds. Half-open admits at
most ``half_open_max_calls`` probes at a time and rejects everyone else at once.

Pure logic on an injected clock: no I/O, no sleeping, no locks (one event loop
thread calls it), so the gateway can keep one per upstream instance and tests
drive it with a FakeClock.

Use it either by hand (``allow()`` then exactly one of ``record_success()``,
``record_failure()`` or ``release()``) or as a context manager that raises
:class:`CircuitOpenError` when the call is not admitted and records failure on
an exception, success otherwise.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from enum import StrEnum
from types import TracebackType
from typing import Any

from shared.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


TransitionHook = Callable[["CircuitBreaker", BreakerState, BreakerState], None]


class CircuitOpenError(Exception):
    """The breaker did not admit the call; ``retry_after`` is in seconds."""

    def __init__(self, name: str, retry_after: float) -> None:
        super().__init__(f"circuit {name!r} is open")
        self.name = name
        self.retry_after = retry_after


class _SlidingWindow:
    """Call and failure counts over the last ``window`` seconds, in fixed buckets (O(1) memory)."""

    BUCKETS = 10

    def __init__(self, window: float) -> None:
        self.bucket_width = window / self.BUCKETS
        self._calls = [0] * self.BUCKETS
        self._failures = [0] * self.BUCKETS
        self._bucket_ids = [-1] * self.BUCKETS  # which time slot each bucket currently holds

    def add(self, now: float, *, failed: bool) -> None:
        slot = int(now // self.bucket_width)
        index = slot % self.BUCKETS
        if self._bucket_ids[index] != slot:  # the bucket holds an expired slot: reuse it
            self._bucket_ids[index] = slot
            self._calls[index] = self._failures[index] = 0
        self._calls[index] += 1
        self._failures[index] += failed

    def totals(self, now: float) -> tuple[int, int]:
        oldest = int(now // self.bucket_width) - self.BUCKETS + 1
        calls = failures = 0
        for index, slot in enumerate(self._bucket_ids):
            if slot >= oldest:
                calls += self._calls[index]
                failures += self._failures[index]
        return calls, failures

    def clear(self) -> None:
        self._bucket_ids = [-1] * self.BUCKETS


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        failure_rate: float | None = None,
        window: float = 30.0,
        min_calls: int = 20,
        reset_timeout: float = 30.0,
        half_open_max_calls: int = 1,
        clock: Clock = SYSTEM_CLOCK,
        on_transition: TransitionHook | None = None,
    ) -> None:
        if failure_threshold < 1 or half_open_max_calls < 1 or min_calls < 1:
            raise ValueError("failure_threshold, half_open_max_calls and min_calls must be at least 1")
        if failure_rate is not None and not 0 < failure_rate <= 1:
            raise ValueError("failure_rate must be in (0, 1]")
        if window <= 0 or reset_timeout < 0:
            raise ValueError("window must be positive and reset_timeout not negative")
        self.name = name
        self.failure_threshold = failure_threshold
        self.failure_rate = failure_rate
        self.min_calls = min_calls
        self.reset_timeout = reset_timeout
        self.half_open_max_calls = half_open_max_calls
        self._clock = clock
        self._on_transition = on_transition

        self._state = BreakerState.CLOSED
        self._consecutive_failures = 0
        self._window = _SlidingWindow(window) if failure_rate is not None else None
        self._opened_at = 0.0
        self._probes_in_flight = 0
        self.times_opened = 0

    # --- reading -----------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        """The current state; an open breaker whose reset timeout has passed reads as half-open."""
        if self._state is BreakerState.OPEN and self._reset_timeout_elapsed():
            self._transition(BreakerState.HALF_OPEN)
        return self._state

    def retry_after(self) -> float:
        """Seconds until a call may be admitted again (0 when it may be admitted now)."""
        state = self.state
        if state is BreakerState.OPEN:
            return max(0.0, self._opened_at + self.reset_timeout - self._clock.monotonic())
        if state is BreakerState.HALF_OPEN and self._probes_in_flight >= self.half_open_max_calls:
            return min(1.0, self.reset_timeout)  # a probe is running: its outcome is due soon
        return 0.0

    def snapshot(self) -> dict[str, Any]:
        """For /gateway/metrics and health pages."""
        return {
            "name": self.name,
            "state": self.state.value,
            "consecutive_failures": self._consecutive_failures,
            "probes_in_flight": self._probes_in_flight,
            "times_opened": self.times_opened,
            "retry_after": math.ceil(self.retry_after()),
        }

    # --- the call protocol ----------------------------------------------------------

    def allow(self) -> bool:
        """Whether a call may go ahead now. In half-open an admitted call holds a probe slot
        until its ``record_success``/``record_failure``/``release``."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and self._probes_in_flight < self.half_open_max_calls:
            self._probes_in_flight += 1
            return True
        return False

    def record_success(self) -> None:
        if self._state is BreakerState.HALF_OPEN:
            self._transition(BreakerState.CLOSED)
        elif self._state is BreakerState.CLOSED:
            self._consecutive_failures = 0
            if self._window is not None:
                self._window.add(self._clock.monotonic(), failed=False)
        # a late success of a call admitted before the breaker opened changes nothing: probes decide

    def record_failure(self) -> None:
        if self._state is BreakerState.HALF_OPEN:
            self._transition(BreakerState.OPEN)
        elif self._state is BreakerState.CLOSED:
            self._consecutive_failures += 1
            if self._window is not None:
                self._window.add(self._clock.monotonic(), failed=True)
            if self._should_open():
                self._transition(BreakerState.OPEN)

    def release(self) -> None:
        """The admitted call ended without an outcome (e.g. it was cancelled): free its probe slot."""
        if self._state is BreakerState.HALF_OPEN and self._probes_in_flight > 0:
            self._probes_in_flight -= 1

    def __enter__(self) -> CircuitBreaker:
        if not self.allow():
            raise CircuitOpenError(self.name, self.retry_after())
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.record_success()
        elif issubclass(exc_type, Exception):
            self.record_failure()
        else:  # cancellation, KeyboardInterrupt: no verdict on the upstream
            self.release()

    # --- internals ------------------------------------------------------------------

    def _should_open(self) -> bool:
        if self._consecutive_failures >= self.failure_threshold:
            return True
        if self._window is None or self.failure_rate is None:
            return False
        calls, failures = self._window.totals(self._clock.monotonic())
        return calls >= self.min_calls and failures >= self.failure_rate * calls

    def _reset_timeout_elapsed(self) -> bool:
        return self._clock.monotonic() - self._opened_at >= self.reset_timeout

    def _transition(self, new: BreakerState) -> None:
        old = self._state
        self._state = new
        self._probes_in_flight = 0
        self._consecutive_failures = 0
        if self._window is not None:
            self._window.clear()
        if new is BreakerState.OPEN:
            self._opened_at = self._clock.monotonic()
            self.times_opened += 1
        level = logging.WARNING if new is BreakerState.OPEN else logging.INFO
        log.log(
            level,
            "circuit breaker %s: %s -> %s",
            self.name,
            old.value,
            new.value,
            extra={"breaker": self.name, "from_state": old.value, "to_state": new.value},
        )
        if self._on_transition is not None:
            self._on_transition(self, old, new)
