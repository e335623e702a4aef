"""A breaker per upstream instance: it opens after the threshold, fails fast without a connection,
admits a bounded number of probes after the reset time, and closes when one succeeds."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

from services.api_gateway.routing import JWKS_PATH
from services.api_gateway.tests.conftest import (
    WAIT_SECONDS,
    RunningGateway,
    Upstream,
    assert_error,
    breaker_state,
    gateway_settings,
    running_gateway,
)
from shared.clock import FakeClock
from shared.testing.tcp_proxy import TcpProxy
from shared.testing.tokens import TokenFactory

THRESHOLD, RESET_SECONDS, PROBES = 3, 30, 2


async def test_a_cut_upstream_opens_the_breaker_and_gets_no_connection_until_probed(
    upstream: Upstream, clock: FakeClock, tokens: TokenFactory
) -> None:
    with TcpProxy("127.0.0.1", upstream.port) as link:
        settings = gateway_settings(
            {"user-service": [link.rewrite_url(upstream.url)]},
            jwks_url=upstream.url + JWKS_PATH,
            breaker_failure_threshold=THRESHOLD,
            breaker_reset_seconds=RESET_SECONDS,
            breaker_half_open_probes=PROBES,
        )
        headers = tokens.auth_header(uuid.uuid4(), "tutor")
        async with running_gateway(settings, clock=clock) as gateway, gateway.client(headers=headers) as client:
            assert (await client.get("/api/v1/users/me")).status_code == 200
            link.cut()
            for _ in range(THRESHOLD):
                response = await client.get("/api/v1/users/me")
                assert response.status_code in (502, 503), response.text
            assert await breaker_state(client) == "open"

            before = link.connections_seen
            for _ in range(20):  # open: answered at once, the upstream is not even connected to
                response = await client.get("/api/v1/users/me")
                assert_error(response, 503, "service_unavailable")
                assert 1 <= int(response.headers["retry-after"]) <= RESET_SECONDS
            assert link.connections_seen == before

            # half-open: 50 callers at once, exactly PROBES reach the upstream. It hangs, so the
            # probes are still out when the others arrive; then it drops them and they fail.
            link.hang()
            clock.advance(RESET_SECONDS)
            before = link.connections_seen
            callers = [asyncio.ensure_future(client.get("/api/v1/users/me")) for _ in range(50)]
            deadline = time.monotonic() + WAIT_SECONDS
            while sum(caller.done() for caller in callers) < 50 - PROBES:
                assert time.monotonic() < deadline, "callers beyond the probes were not answered at once"
                await asyncio.sleep(0.01)
            assert link.connections_seen - before == PROBES
            link.cut()
            responses = await asyncio.gather(*callers)
            assert Counter(response.status_code for response in responses) == {503: 50 - PROBES, 502: PROBES}
            assert link.connections_seen - before == PROBES
            assert await breaker_state(client) == "open"  # the probes failed

            link.restore()
            clock.advance(RESET_SECONDS)
            responses = [await client.get("/api/v1/users/me") for _ in range(5)]
            assert [response.status_code for response in responses] == [200] * 5
            assert await breaker_state(client) == "closed"
            metrics = (await client.get("/metrics")).text
            series = f'gateway_circuit_breaker_state{{instance="127.0.0.1:{link.port}",service="user-service"}} 0.0'
            assert series in metrics


async def test_timeouts_count_as_failures_and_4xx_do_not(
    upstream: Upstream, clock: FakeClock, tokens: TokenFactory
) -> None:
    with TcpProxy("127.0.0.1", upstream.port) as link:
        settings = gateway_settings(
            {"user-service": [link.rewrite_url(upstream.url)]},
            jwks_url=upstream.url + JWKS_PATH,
            breaker_failure_threshold=THRESHOLD,
            upstream_timeout_seconds=0.2,
        )
        headers = tokens.auth_header(uuid.uuid4(), "tutor")
        async with running_gateway(settings, clock=clock) as gateway, gateway.client(headers=headers) as client:
            for status in (404, 409, 422, 400) * 3:  # answers, not failures
                assert (await client.get(f"/api/v1/users/x?status={status}")).status_code == status
            assert (await client.get("/api/v1/users/x?status=500")).status_code == 500
            assert await breaker_state(client) == "closed"
            link.hang()
            for _ in range(THRESHOLD):
                assert_error(await client.get("/api/v1/users/me"), 504, "upstream_timeout")
            assert await breaker_state(client) == "open"
            link.restore()


async def test_an_upstream_answering_503_opens_the_breaker_too(gateway: RunningGateway) -> None:
    headers = {"Authorization": "Bearer " + "x"}
    async with gateway.client() as client:
        for _ in range(THRESHOLD):  # the upstream's own 503s pass through, and count
            response = await client.post("/api/v1/auth/login?status=503", json={}, headers=headers)
            assert response.status_code == 503
        response = await client.post("/api/v1/auth/login", json={})
        assert_error(response, 503, "service_unavailable")
        metrics = (await client.get("/gateway/metrics")).json()
    [breaker] = [b for b in metrics["circuit_breakers"].values() if b["service"] == "user-service"]
    assert breaker["state"] == "open" and breaker["times_opened"] == 1
