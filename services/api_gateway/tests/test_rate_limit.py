"""Rate limits: exact under concurrency and across instances, sliding on the injected clock,
every key with an expiry, and a local fallback while Redis is away."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis

from services.api_gateway.gateway import Gateway
from services.api_gateway.limiter import KEY_PREFIX, RateLimiter, SlidingWindowLog
from services.api_gateway.routing import JWKS_PATH
from services.api_gateway.tests.conftest import (
    Upstream,
    assert_error,
    gateway_settings,
    running_gateway,
)
from shared.clock import FakeClock
from shared.testing.infra import TEST_REDIS_URL
from shared.testing.tcp_proxy import TcpProxy
from shared.testing.tokens import TokenFactory


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(TEST_REDIS_URL)
    yield client
    await client.aclose()


async def assert_every_limiter_key_expires(redis: Redis) -> int:
    """TTL on every limiter key in the test database: -1 (no expiry) must never appear."""
    keys = [key async for key in redis.scan_iter(match=KEY_PREFIX + "*", count=1000)]
    async with redis.pipeline(transaction=False) as pipeline:
        for key in keys:
            pipeline.pttl(key)
        ttls = await pipeline.execute()
    forever = [key for key, ttl in zip(keys, ttls, strict=True) if ttl == -1]
    assert not forever, f"limiter keys without an expiry: {forever[:5]}"
    return len(keys)


async def burst(client: httpx.AsyncClient, count: int, path: str, headers: dict[str, str]) -> list[httpx.Response]:
    return await asyncio.gather(*(client.get(path, headers=headers) for _ in range(count)))


# the 120 callers and the gateway share this test's one event loop: on a slow host a Redis answer can wait
# there longer than the production timeout (0.25 s), and a timeout rightly falls back to limiting per
# instance (test_faults.py proves that; it let 114 of 120 through once, on a host at half speed); here the
# shared limit is under test, so Redis gets the time it needs
PATIENT_REDIS = {"rate_limit_redis_timeout_seconds": 5.0}


async def test_one_user_gets_exactly_the_limit_and_others_are_unaffected(
    upstream: Upstream, clock: FakeClock, tokens: TokenFactory, redis: Redis
) -> None:
    settings = gateway_settings({"user-service": [upstream.url]}, jwks_url=upstream.url + JWKS_PATH, **PATIENT_REDIS)
    alice, bob = tokens.auth_header(uuid.uuid4(), "tutor"), tokens.auth_header(uuid.uuid4(), "student")
    async with running_gateway(settings, clock=clock) as gateway, gateway.client() as client:
        responses = await burst(client, 120, "/api/v1/users/me", alice)
        bobs = await client.get("/api/v1/users/me", headers=bob)
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: 100, 429: 20}
    for response in responses:
        assert response.headers["x-ratelimit-limit"] == "100"
        if response.status_code == 429:
            assert_error(response, 429, "rate_limited")
            assert int(response.headers["retry-after"]) >= 1
            assert response.headers["x-ratelimit-remaining"] == "0"
    remaining = sorted(int(r.headers["x-ratelimit-remaining"]) for r in responses if r.status_code == 200)
    assert remaining == list(range(100))  # each admitted request saw its own count
    assert bobs.status_code == 200 and bobs.headers["x-ratelimit-remaining"] == "99"
    assert await assert_every_limiter_key_expires(redis) >= 2


async def test_two_gateway_instances_share_one_limit(
    upstream: Upstream, clock: FakeClock, tokens: TokenFactory, redis: Redis
) -> None:
    # both gateways and all 200 callers share this test's one event loop (see PATIENT_REDIS)
    settings = gateway_settings({"user-service": [upstream.url]}, jwks_url=upstream.url + JWKS_PATH, **PATIENT_REDIS)
    headers = tokens.auth_header(uuid.uuid4(), "tutor")
    async with (
        running_gateway(settings, clock=clock) as first,
        running_gateway(settings, clock=clock) as second,
        first.client() as one,
        second.client() as other,
    ):
        responses = await asyncio.gather(
            burst(one, 100, "/api/v1/users/me", headers), burst(other, 100, "/api/v1/users/me", headers)
        )
    statuses = Counter(response.status_code for batch in responses for response in batch)
    assert statuses == {200: 100, 429: 100}
    assert all(response.status_code in (200, 429) for batch in responses for response in batch)
    await assert_every_limiter_key_expires(redis)


async def test_the_window_slides_on_the_injected_clock(redis: Redis) -> None:
    clock = FakeClock()
    limiter = RateLimiter(redis, window_seconds=60, clock=clock, redis_retry_seconds=5)
    key = f"test:{uuid.uuid4()}"
    assert [(await limiter.hit(key, 3)).allowed for _ in range(4)] == [True, True, True, False]
    clock.advance(30)
    refused = await limiter.hit(key, 3)
    assert not refused.allowed and refused.retry_after == 30  # the first three leave the window in 30 s
    clock.advance(29.999)
    assert not (await limiter.hit(key, 3)).allowed
    clock.advance(0.001)  # exactly one window after the first three
    admitted = [await limiter.hit(key, 3) for _ in range(4)]
    assert [decision.allowed for decision in admitted] == [True, True, True, False]
    assert [decision.remaining for decision in admitted] == [2, 1, 0, 0]
    assert all(decision.backend == "redis" for decision in admitted)
    assert 0 < await redis.pttl(KEY_PREFIX + key) <= 60_000


def test_the_local_log_decides_like_the_script() -> None:
    log = SlidingWindowLog(window_ms=60_000)
    assert [log.hit("k", 2, 0)[0] for _ in range(3)] == [True, True, False]
    assert log.hit("k", 2, 59_999) == (False, 0, 1)
    assert log.hit("k", 2, 60_000) == (True, 1, 60_000)
    assert log.hit("other", 2, 60_000)[0]


async def test_service_accounts_routes_and_addresses_have_their_own_limits(
    upstream: Upstream, clock: FakeClock, tokens: TokenFactory
) -> None:
    settings = gateway_settings(
        {"user-service": [upstream.url], "material-service": [upstream.url]},
        jwks_url=upstream.url + JWKS_PATH,
        rate_limit_requests=3,
        service_rate_limit_requests=6,
        route_policies={"materials": {"rate_limit": 2}},
    )
    tutor = tokens.auth_header(uuid.uuid4(), "tutor")
    bot = tokens.auth_header("telegram-bot", "service")
    address = {"X-Forwarded-For": f"198.51.100.{uuid.uuid4().int % 250}"}
    async with (
        running_gateway(settings, clock=clock, behind_trusted_proxy=True) as gateway,
        gateway.client() as client,
    ):
        tutor_users = await burst(client, 4, "/api/v1/users/me", tutor)
        tutor_materials = await burst(client, 3, "/api/v1/materials/x", tutor)  # counted apart from users
        bot_users = await burst(client, 7, "/api/v1/users/me", bot)
        # anonymous: by address; a failed sign-in counts as well
        anonymous = [await client.post("/api/v1/auth/login", json={}, headers=address) for _ in range(2)]
        anonymous.append(await client.get("/api/v1/users/me", headers={**address, "Authorization": "Bearer nonsense"}))
        anonymous.append(await client.post("/api/v1/auth/login", json={}, headers=address))
        # the bot's token on a public route puts the bot's limit on it
        bot_login = await client.post("/api/v1/auth/telegram", json={}, headers={**bot, **address})
    assert [r.status_code for r in tutor_users].count(429) == 1
    assert [r.status_code for r in tutor_materials].count(429) == 1
    assert [r.status_code for r in bot_users].count(429) == 1
    assert [r.status_code for r in anonymous] == [200, 200, 401, 429]
    assert bot_login.status_code == 429 and bot_login.headers["x-ratelimit-limit"] == "6"


async def test_without_redis_the_local_limit_applies_and_health_says_so(
    upstream: Upstream, clock: FakeClock, tokens: TokenFactory
) -> None:
    with TcpProxy("127.0.0.1", 6379) as redis_link:
        settings = gateway_settings(
            {"user-service": [upstream.url]},
            jwks_url=upstream.url + JWKS_PATH,
            redis_url=redis_link.rewrite_url(TEST_REDIS_URL),
            rate_limit_requests=3,
            rate_limit_redis_retry_seconds=5,
        )
        headers = tokens.auth_header(uuid.uuid4(), "tutor")
        async with running_gateway(settings, clock=clock) as gateway, gateway.client(headers=headers) as client:
            assert (await client.get("/api/v1/users/me")).headers["x-ratelimit-remaining"] == "2"
            assert (await client.get("/health")).json()["rate_limiter"] == {"backend": "redis", "redis": "healthy"}

            redis_link.cut()
            served = [await client.get("/api/v1/users/me") for _ in range(4)]
            assert [response.status_code for response in served] == [200, 200, 200, 429]  # this instance's own count
            health = (await client.get("/health")).json()
            assert health["status"] == "degraded"
            assert health["rate_limiter"] == {"backend": "local", "redis": "unhealthy"}
            assert (await client.get("/ready")).status_code == 200  # still serving: still ready

            redis_link.restore()
            clock.advance(61)  # past the retry interval, and a new window for Redis' count
            assert (await client.get("/api/v1/users/me")).headers["x-ratelimit-remaining"] == "2"
            assert (await client.get("/health")).json()["rate_limiter"]["backend"] == "redis"


async def test_a_burst_beyond_the_redis_pool_is_decided_locally_without_giving_up_on_redis(
    upstream: Upstream, clock: FakeClock
) -> None:
    settings = gateway_settings({"user-service": [upstream.url]}, jwks_url=upstream.url + JWKS_PATH)
    gateway = Gateway(settings.model_copy(update={"redis_max_connections": 5}), clock=clock)
    try:
        decisions = await asyncio.gather(*(gateway.limiter.hit(f"burst:{uuid.uuid4()}", 10) for _ in range(50)))
    finally:
        await gateway.redis.aclose()
    backends = Counter(decision.backend for decision in decisions)
    assert backends["redis"] >= 5 and backends["local"] >= 1
    assert all(decision.allowed for decision in decisions)
    assert gateway.limiter.backend == "redis"  # a full pool is not a Redis failure
