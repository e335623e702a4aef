"""Rate limits: a sliding-window log per caller in Redis, one atomic Lua call per request.

``rate_limit.lua`` drops the caller's entries older than the window, counts the
rest, logs this request if it fits, and sets the key's expiry — in one step, so
the limit is exact across any number of gateway instances and at any speed. The
time is an argument (the injected clock's wall time): tests pass it, and the
instances agree on it as far as their clocks do (NTP keeps that to milliseconds).

When Redis does not answer, the same algorithm runs in process memory
(:class:`SlidingWindowLog`): the gateway keeps serving, each instance enforcing
the limit on its own, and ``/health`` says so. A breaker on an injected clock
keeps requests from waiting on a dead Redis: after a failure the local log is
used for ``retry_after`` seconds, then one request tries Redis again
(docs/decisions/0007-api-gateway.md).
"""

from __future__ import annotations

import itertools
import logging
import math
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from redis.asyncio import Redis
from redis.exceptions import MaxConnectionsError, RedisError

from services.api_gateway.metrics import RATE_LIMIT_DECISIONS
from shared.breaker import BreakerState, CircuitBreaker
from shared.clock import Clock

log = logging.getLogger(__name__)

RATE_LIMIT_LUA = (Path(__file__).parent / "rate_limit.lua").read_text()
KEY_PREFIX = "gateway:rl:"
Backend = Literal["redis", "local"]


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: float  # seconds until the oldest counted request leaves the window (and one more fits)
    backend: Backend

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.reset_after))

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-ratelimit-limit", b"%d" % self.limit),
            (b"x-ratelimit-remaining", b"%d" % self.remaining),
            (b"x-ratelimit-reset", b"%d" % math.ceil(self.reset_after)),
        ]


class SlidingWindowLog:
    """``rate_limit.lua``'s algorithm in process memory: the fallback while Redis is away."""

    SWEEP_EVERY = 10_000  # calls between sweeps of callers whose whole log has expired

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self._logs: dict[str, deque[int]] = {}
        self._calls = 0

    def hit(self, key: str, limit: int, now_ms: int) -> tuple[bool, int, int]:
        """(allowed, remaining, milliseconds until the oldest entry leaves the window)."""
        self._calls += 1
        if self._calls % self.SWEEP_EVERY == 0:
            self._sweep(now_ms)
        entries = self._logs.setdefault(key, deque())
        cutoff = now_ms - self.window_ms
        while entries and entries[0] <= cutoff:
            entries.popleft()
        allowed = len(entries) < limit
        if allowed:
            entries.append(now_ms)
        reset = entries[0] + self.window_ms - now_ms if entries else self.window_ms
        return allowed, limit - len(entries), reset

    def __len__(self) -> int:
        return len(self._logs)

    def _sweep(self, now_ms: int) -> None:
        cutoff = now_ms - self.window_ms
        for key in [key for key, entries in self._logs.items() if not entries or entries[-1] <= cutoff]:
            del self._logs[key]


class RateLimiter:
    def __init__(
        self,
        redis: Redis,
        *,
        window_seconds: int,
        clock: Clock,
        redis_retry_seconds: float,
        key_prefix: str = KEY_PREFIX,
    ) -> None:
        self.window_seconds = window_seconds
        self._window_ms = window_seconds * 1000
        self._script = redis.register_script(RATE_LIMIT_LUA)
        self._clock = clock
        self._key_prefix = key_prefix
        self._local = SlidingWindowLog(self._window_ms)
        self._redis_breaker = CircuitBreaker(
            "rate-limiter-redis",
            failure_threshold=1,
            reset_timeout=redis_retry_seconds,
            half_open_max_calls=1,
            clock=clock,
            on_transition=self._on_redis_transition,
        )
        # request ids: unique across instances (the prefix) and within one (the counter)
        self._id_prefix = uuid.uuid4().hex[:12] + ":"
        self._ids = itertools.count()
        self._counted = {
            (backend, allowed): RATE_LIMIT_DECISIONS.labels(backend, "allowed" if allowed else "limited")
            for backend in ("redis", "local")
            for allowed in (True, False)
        }

    @property
    def backend(self) -> Backend:
        """Where limits are kept now: Redis, or this instance's memory while Redis is away."""
        return "redis" if self._redis_breaker.state is BreakerState.CLOSED else "local"

    async def hit(self, key: str, limit: int) -> RateDecision:
        """Count one request of ``key`` against ``limit`` per window; says whether it may pass."""
        now_ms = int(self._clock.now().timestamp() * 1000)
        decision = await self._hit_redis(key, limit, now_ms) if self._redis_breaker.allow() else None
        if decision is None:
            allowed, remaining, reset_ms = self._local.hit(key, limit, now_ms)
            decision = RateDecision(allowed, limit, remaining, reset_ms / 1000, "local")
        self._counted[decision.backend, decision.allowed].inc()
        return decision

    def snapshot(self) -> dict[str, object]:
        return {
            "backend": self.backend,
            "window_seconds": self.window_seconds,
            "redis": self._redis_breaker.snapshot(),
            "local_callers": len(self._local),
        }

    async def _hit_redis(self, key: str, limit: int, now_ms: int) -> RateDecision | None:
        request_id = f"{self._id_prefix}{next(self._ids)}"
        try:
            allowed, remaining, reset_ms = await self._script(
                keys=[self._key_prefix + key], args=[now_ms, self._window_ms, limit, request_id]
            )
        except MaxConnectionsError:  # our pool is full (a burst), Redis is not at fault: this one is local
            self._redis_breaker.release()
            return None
        except (RedisError, OSError) as exc:
            self._redis_breaker.record_failure()
            log.debug("rate limit falls back to the local log: %r", exc)
            return None
        except BaseException:  # cancelled: no verdict on Redis
            self._redis_breaker.release()
            raise
        self._redis_breaker.record_success()
        return RateDecision(bool(allowed), limit, int(remaining), int(reset_ms) / 1000, "redis")

    def _on_redis_transition(self, _: CircuitBreaker, old: BreakerState, new: BreakerState) -> None:
        if new is BreakerState.OPEN and old is BreakerState.CLOSED:
            log.warning("Redis does not answer: rate limits are kept per gateway instance until it does")
        elif new is BreakerState.CLOSED:
            log.info("Redis answers again: rate limits are shared by every gateway instance")
