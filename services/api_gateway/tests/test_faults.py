"""Fault injection at the gateway (issue 9): Redis and an upstream service behind a TcpProxy.

The gateway runs in process (conftest.py ``running_gateway``) on the session's
FakeClock, against the real Redis and a real upstream app; nothing sleeps to let time pass.

Already proven beside this file and not repeated here:
- test_rate_limit.py::test_without_redis_the_local_limit_applies_and_health_says_so
  (one instance: Redis cut → local limit, /health degraded, back to Redis after the retry);
- test_breaker.py::test_a_cut_upstream_opens_the_breaker_and_gets_no_connection_until_probed
  (open → 503 + Retry-After with no connection; 50 callers in half-open → exactly the probes
  connect; failing probes reopen it).

Added here: the documented price of the fallback across two instances (each enforces the
limit alone), that a dead Redis is not even connected to during the retry interval and then
tried by exactly one request, that Redis' shared count resumes afterwards, that a cut in the
middle of a burst leaves no limiter key without an expiry; and for the breaker, that it opens
exactly at the threshold and that half-open probes which *succeed* close it, with exactly the
configured number of requests reaching the recovered service; and one of two instances killed
under load (≥ 99% succeed, it leaves the rotation and rejoins once healthy).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from redis.asyncio import Redis

from services.api_gateway.limiter import KEY_PREFIX
from services.api_gateway.routing import JWKS_PATH
from services.api_gateway.settings import GatewaySettings
from services.api_gateway.tests.conftest import (
    WAIT_SECONDS,
    Upstream,
    UpstreamProcess,
    assert_error,
    breaker_state,
    gateway_settings,
    running_gateway,
)
from shared.clock import FakeClock
from shared.testing.infra import TEST_REDIS_URL
from shared.testing.scale import proof_scale
from shared.testing.tcp_proxy import TcpProxy
from shared.testing.tokens import TokenFactory

pytestmark = pytest.mark.proof

LIMIT, RETRY_SECONDS = 5, 10  # the per-caller limit and the Redis retry interval of these gateways
THRESHOLD, RESET_SECONDS, PROBES = 4, 20, 3  # the breaker settings of the breaker test
ME = "/api/v1/users/me"


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(TEST_REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
def redis_link() -> Iterator[TcpProxy]:
    target = urlsplit(TEST_REDIS_URL)
    with TcpProxy(target.hostname or "127.0.0.1", target.port or 6379) as link:
        yield link


def limiter_prefix() -> str:
    """Keys of this test alone, so the scan below sees exactly what it wrote."""
    return f"{KEY_PREFIX}faults-{uuid.uuid4().hex[:8]}:"


async def assert_every_key_expires(redis: Redis, prefix: str) -> int:
    keys = [key async for key in redis.scan_iter(match=prefix + "*", count=1000)]
    ttls = [await redis.pttl(key) for key in keys]
    assert all(ttl > 0 for ttl in ttls), f"limiter keys without an expiry: {dict(zip(keys, ttls, strict=True))}"
    return len(keys)


def limited_through(redis_link: TcpProxy, upstream: Upstream, prefix: str) -> GatewaySettings:
    """A gateway limiting each caller to LIMIT through Redis behind ``redis_link``, under its own key prefix."""
    return gateway_settings(
        {"user-service": [upstream.url]},
        jwks_url=upstream.url + JWKS_PATH,
        redis_url=redis_link.rewrite_url(TEST_REDIS_URL),
        rate_limit_requests=LIMIT,
        rate_limit_redis_retry_seconds=RETRY_SECONDS,
        rate_limit_key_prefix=prefix,
    )


def remaining(response: httpx.Response) -> int:
    return int(response.headers["x-ratelimit-remaining"])


async def test_redis_cut_each_instance_limits_alone_redis_is_retried_once_then_shared_again(
    upstream: Upstream, clock: FakeClock, tokens: TokenFactory, redis: Redis, redis_link: TcpProxy
) -> None:
    prefix = limiter_prefix()
    settings = limited_through(redis_link, upstream, prefix)
    headers = tokens.auth_header(uuid.uuid4(), "tutor")
    async with (
        running_gateway(settings, clock=clock) as first,
        running_gateway(settings, clock=clock) as second,
        first.client(headers=headers) as one,
        second.client(headers=headers) as other,
    ):
        # Redis up: one count across both instances
        shared = [await one.get(ME), await other.get(ME), await one.get(ME)]
        assert [remaining(response) for response in shared] == [LIMIT - 1, LIMIT - 2, LIMIT - 3]

        redis_link.cut()
        # each instance falls back to its own log, which knows nothing of the 3 counted in Redis
        assert remaining(await one.get(ME)) == LIMIT - 1
        assert remaining(await other.get(ME)) == LIMIT - 1
        assert first.gateway.limiter.backend == second.gateway.limiter.backend == "local"
        connections = redis_link.connections_seen
        alone = [await one.get(ME) for _ in range(LIMIT)], [await other.get(ME) for _ in range(LIMIT)]
        for responses in alone:  # the documented price: N instances, up to N × the limit
            assert [response.status_code for response in responses] == [200] * (LIMIT - 1) + [429]
            assert_error(responses[-1], 429, "rate_limited")
        assert redis_link.connections_seen == connections  # within the retry interval Redis is not tried

        clock.advance(RETRY_SECONDS)  # Redis still cut: one request tries it, the others do not
        assert (await one.get(ME)).status_code == 429  # tried, failed, decided by the local log
        assert redis_link.connections_seen == connections + 1
        assert (await one.get(ME)).status_code == 429
        assert redis_link.connections_seen == connections + 1

        redis_link.restore()
        clock.advance(RETRY_SECONDS)
        # back on Redis: its count (3, still in the window) decides again, not the full local log
        back = await one.get(ME)
        assert back.status_code == 200 and remaining(back) == LIMIT - 4
        back = await other.get(ME)
        assert back.status_code == 200 and remaining(back) == 0
        assert_error(await one.get(ME), 429, "rate_limited")
        assert first.gateway.limiter.backend == second.gateway.limiter.backend == "redis"

    assert await assert_every_key_expires(redis, prefix) == 1


async def test_redis_cut_in_the_middle_of_a_burst_leaves_no_key_without_an_expiry(
    upstream: Upstream, clock: FakeClock, tokens: TokenFactory, redis: Redis, redis_link: TcpProxy
) -> None:
    prefix = limiter_prefix()
    settings = limited_through(redis_link, upstream, prefix)
    callers = [tokens.auth_header(uuid.uuid4(), "student") for _ in range(40)]
    async with running_gateway(settings, clock=clock) as gateway, gateway.client() as client:
        requests = [asyncio.ensure_future(client.get(ME, headers=headers)) for headers in callers * 2]
        done, _ = await asyncio.wait(requests, return_when=asyncio.FIRST_COMPLETED)
        redis_link.cut()  # the rest of the burst meets a dead Redis, some of it with scripts in flight
        responses = await asyncio.gather(*requests)
        assert Counter(response.status_code for response in responses) == {200: 80}
        assert gateway.gateway.limiter.backend == "local"

        redis_link.restore()
        clock.advance(RETRY_SECONDS)
        after = [await client.get(ME, headers=headers) for headers in callers]
        assert all(response.status_code == 200 for response in after)
        assert gateway.gateway.limiter.backend == "redis"

    assert await assert_every_key_expires(redis, prefix) == len(callers)


async def test_a_cut_service_opens_the_breaker_at_the_threshold_and_successful_probes_close_it(
    upstream: Upstream, clock: FakeClock, tokens: TokenFactory
) -> None:
    with TcpProxy("127.0.0.1", upstream.port) as link:
        settings = gateway_settings(
            {"user-service": [link.rewrite_url(upstream.url)]},
            jwks_url=upstream.url + JWKS_PATH,
            breaker_failure_threshold=THRESHOLD,
            breaker_reset_seconds=RESET_SECONDS,
            breaker_half_open_probes=PROBES,
            rate_limit_requests=1000,
        )
        headers = tokens.auth_header(uuid.uuid4(), "tutor")
        async with running_gateway(settings, clock=clock) as gateway, gateway.client(headers=headers) as client:
            assert (await client.get(ME)).status_code == 200
            link.cut()
            for _ in range(THRESHOLD - 1):  # every failure up to the threshold still tries the service
                before = link.connections_seen
                assert (await client.get(ME)).status_code in (502, 503)
                assert link.connections_seen > before
                assert await breaker_state(client) == "closed"
            assert (await client.get(ME)).status_code in (502, 503)
            assert await breaker_state(client) == "open"  # exactly at the threshold

            before = link.connections_seen
            for _ in range(10):
                response = await client.get(ME)
                assert_error(response, 503, "service_unavailable")
                assert 1 <= int(response.headers["retry-after"]) <= RESET_SECONDS
            assert link.connections_seen == before  # open: the service sees no connection

            # half-open with the service back. It is held (hang) until every non-probe caller has
            # its answer, so "exactly PROBES" does not depend on how fast the probes come back.
            upstream.state.seen.clear()
            link.hang()
            clock.advance(RESET_SECONDS)
            callers = [asyncio.ensure_future(client.get(ME)) for _ in range(50)]
            try:
                deadline = time.monotonic() + WAIT_SECONDS
                while sum(caller.done() for caller in callers) < 50 - PROBES:
                    assert time.monotonic() < deadline, "callers beyond the probes were not answered at once"
                    await asyncio.sleep(0.01)
                assert link.connections_seen - before == PROBES
                for caller in (caller for caller in callers if caller.done()):
                    assert_error(caller.result(), 503, "service_unavailable")
            except BaseException:
                link.cut()  # let the held requests end, so the gateway stops at once
                await asyncio.gather(*callers, return_exceptions=True)
                raise
            link.restore()
            responses = await asyncio.gather(*callers)
            assert Counter(response.status_code for response in responses) == {200: PROBES, 503: 50 - PROBES}
            assert len(upstream.state.requests_to(ME)) == PROBES
            assert await breaker_state(client) == "closed"

            after = await asyncio.gather(*(client.get(ME) for _ in range(50)))
            assert [response.status_code for response in after] == [200] * 50
            assert len(upstream.state.requests_to(ME)) == PROBES + 50


async def test_one_of_two_instances_failing_under_load_leaves_the_rotation_and_rejoins_when_healthy(
    upstream: Upstream, clock: FakeClock, tokens: TokenFactory
) -> None:
    """PROOF_SCALE requests (GETs and POSTs, 8 in flight) while instance "b" is killed a third of the
    way in and started again at two thirds: at least 99% succeed, "b" answers nothing while dead and
    is back in the rotation once its health check passes."""
    count = proof_scale()
    first, second = UpstreamProcess("a").start(), UpstreamProcess("b").start()
    try:
        settings = gateway_settings(
            {"user-service": [first.url, second.url]},
            jwks_url=upstream.url + JWKS_PATH,
            rate_limit_requests=10 * count,
        )
        headers = tokens.auth_header(uuid.uuid4(), "tutor")
        async with running_gateway(settings, clock=clock) as gateway, gateway.client(headers=headers) as client:
            semaphore = asyncio.Semaphore(8)
            answers: list[httpx.Response] = []
            dead = asyncio.Event()
            out_of_rotation: list[bool] = []

            async def call(index: int) -> None:
                async with semaphore:
                    response = await client.request("POST" if index % 4 == 0 else "GET", ME)
                answers.append(response)
                if len(answers) == count // 3:
                    second.kill()
                    dead.set()
                elif len(answers) == 2 * count // 3:
                    services = (await client.get("/gateway/services")).json()["services"]["user-service"]
                    [victim] = [i for i in services["instances"] if i["url"] == second.url]
                    out_of_rotation.append(victim["breaker"]["state"] == "open" or not victim["healthy"])
                    await asyncio.to_thread(second.start)  # healthy again, at the same address

            await asyncio.gather(*(call(index) for index in range(count)))
            assert dead.is_set() and out_of_rotation == [True]  # the dead one had left the rotation
            succeeded = sum(response.status_code == 200 for response in answers)
            assert succeeded >= 0.99 * count, Counter(response.status_code for response in answers)
            failed = [response for response in answers if response.status_code != 200]
            # a POST is never retried (it may not be idempotent): refused → 503, cut mid-answer → 502
            for response in failed:
                code = {502: "bad_gateway", 503: "service_unavailable"}.get(response.status_code)
                assert code, response.text
                assert_error(response, response.status_code, code)
                assert response.request.method == "POST"

            # back in the rotation once the health round finds it ready and its breaker has cooled
            clock.advance(settings.breaker_reset_seconds)
            await gateway.gateway.registry.refresh()
            after = [(await client.get(ME)).json()["upstream"] for _ in range(20)]
            assert Counter(after) == {"a": 10, "b": 10}
    finally:
        first.kill()
        second.kill()
