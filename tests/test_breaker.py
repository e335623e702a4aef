"""The circuit breaker, driven by a FakeClock: no sleeping, no durations asserted."""

from __future__ import annotations

import asyncio

import pytest

from shared.breaker import BreakerState, CircuitBreaker, CircuitOpenError
from shared.clock import FakeClock


def make_breaker(clock: FakeClock, **overrides: object) -> CircuitBreaker:
    options: dict[str, object] = {"failure_threshold": 3, "reset_timeout": 10.0, "half_open_max_calls": 1}
    options.update(overrides)
    return CircuitBreaker("upstream", clock=clock, **options)  # type: ignore[arg-type]


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        assert breaker.allow()
        breaker.record_failure()


def test_opens_after_consecutive_failures_and_rejects() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)
    fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    fail(breaker, 1)
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    assert breaker.retry_after() == 10.0
    clock.advance(4)
    assert breaker.retry_after() == 6.0
    assert not breaker.allow()


def test_a_success_resets_the_consecutive_count() -> None:
    breaker = make_breaker(FakeClock())
    fail(breaker, 2)
    assert breaker.allow()
    breaker.record_success()
    fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED


def test_failure_rate_over_a_window_needs_min_calls() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock, failure_threshold=100, failure_rate=0.5, window=10.0, min_calls=10)
    for _ in range(4):  # 4 failures in 8 calls: 50%, but fewer than min_calls
        breaker.record_success()
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_success()
    breaker.record_failure()  # 5 of 10
    assert breaker.state is BreakerState.OPEN


def test_failure_rate_forgets_calls_older_than_the_window() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock, failure_threshold=100, failure_rate=0.5, window=10.0, min_calls=4)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_failure()
    clock.advance(11)  # those three failures have left the window
    breaker.record_success()
    breaker.record_success()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def test_half_open_after_reset_timeout_then_closes_on_a_successful_probe() -> None:
    clock = FakeClock()
    transitions: list[tuple[str, str]] = []
    breaker = make_breaker(clock, on_transition=lambda b, old, new: transitions.append((old.value, new.value)))
    fail(breaker, 3)
    clock.advance(10)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()  # one probe at a time
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    assert transitions == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_a_failed_probe_opens_again_for_a_full_reset_timeout() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)
    fail(breaker, 3)
    clock.advance(10)
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_after() == 10.0
    assert breaker.times_opened == 2


async def test_half_open_admits_exactly_the_probe_limit_among_50_concurrent_callers() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock, half_open_max_calls=3)
    fail(breaker, 3)
    clock.advance(10)
    release_probes = asyncio.Event()

    async def caller() -> bool:
        if not breaker.allow():
            return False
        await release_probes.wait()  # the probe is "in flight" while the others arrive
        breaker.record_success()
        return True

    tasks = [asyncio.create_task(caller()) for _ in range(50)]
    await asyncio.sleep(0)  # every caller has asked once
    assert breaker.state is BreakerState.HALF_OPEN
    release_probes.set()
    admitted = await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)
    assert sum(admitted) == 3
    assert breaker.state is BreakerState.CLOSED


def test_a_released_probe_frees_its_slot() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)
    fail(breaker, 3)
    clock.advance(10)
    assert breaker.allow()
    breaker.release()  # e.g. the probing request was cancelled
    assert breaker.allow()


def test_context_manager_records_outcomes_and_raises_when_open() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock, failure_threshold=2)
    for _ in range(2):
        with pytest.raises(ConnectionError), breaker:
            raise ConnectionError
    with pytest.raises(CircuitOpenError) as rejected:
        with breaker:
            pytest.fail("an open breaker must not run the call")
    assert rejected.value.retry_after == 10.0
    clock.advance(10)
    with breaker:
        pass
    assert breaker.state is BreakerState.CLOSED


def test_snapshot_reports_state() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)
    fail(breaker, 3)
    assert breaker.snapshot() == {
        "name": "upstream",
        "state": "open",
        "consecutive_failures": 0,
        "probes_in_flight": 0,
        "times_opened": 1,
        "retry_after": 10,
    }


def test_rejects_nonsense_configuration() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker("x", failure_threshold=0, clock=FakeClock())
    with pytest.raises(ValueError):
        CircuitBreaker("x", failure_rate=1.5, clock=FakeClock())
