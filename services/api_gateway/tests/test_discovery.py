"""Instances from DNS and health checks; load spread over them; a dead one costs no idempotent request."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Sequence

import pytest

from services.api_gateway.routing import JWKS_PATH
from services.api_gateway.tests.conftest import (
    WAIT_SECONDS,
    Upstream,
    UpstreamProcess,
    assert_error,
    gateway_settings,
    running_gateway,
    serving_upstream,
)
from shared.clock import FakeClock
from shared.testing.tokens import TokenFactory


class FakeDns:
    """An injected resolver: the addresses each host name resolves to right now."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise OSError(f"{host}: name does not resolve")
        return list(self.answers[host])


async def test_every_address_of_a_host_is_an_instance_and_leaves_with_its_address(
    upstream: Upstream, clock: FakeClock, tokens: TokenFactory
) -> None:
    port = upstream.port
    with serving_upstream("u2", host="127.0.0.2", port=port) as second:
        dns = FakeDns({"users.internal": ["127.0.0.1", "127.0.0.2"]})
        settings = gateway_settings(
            {"user-service": [f"http://users.internal:{port}"]}, jwks_url=upstream.url + JWKS_PATH
        )
        headers = tokens.auth_header(uuid.uuid4(), "tutor")
        async with (
            running_gateway(settings, clock=clock, resolver=dns) as gateway,
            gateway.client(headers=headers) as client,
        ):
            pool = gateway.gateway.registry.pool("user-service")
            assert pool is not None and [i.address for i in pool.instances] == [
                f"127.0.0.1:{port}",
                f"127.0.0.2:{port}",
            ]
            answers = [(await client.get("/api/v1/users/me")).json() for _ in range(10)]
            assert Counter(answer["upstream"] for answer in answers) == {"u1": 5, "u2": 5}  # in turn when idle
            assert {tuple(h) for a in answers for h in a["headers"] if h[0] == "host"} == {
                ("host", f"users.internal:{port}")
            }

            dns.answers["users.internal"] = ["127.0.0.1"]  # the second replica is gone from DNS
            await gateway.gateway.registry.refresh()
            answers = [(await client.get("/api/v1/users/me")).json() for _ in range(4)]
            assert {answer["upstream"] for answer in answers} == {"u1"}

            del dns.answers["users.internal"]  # DNS fails: the known instances stay
            await gateway.gateway.registry.refresh()
            assert [i.address for i in pool.instances] == [f"127.0.0.1:{port}"]
            assert (await client.get("/api/v1/users/me")).status_code == 200
        assert len(second.state.seen) == 5


async def test_an_unhealthy_instance_leaves_the_rotation_and_returns(
    upstream: Upstream, clock: FakeClock, tokens: TokenFactory
) -> None:
    with serving_upstream("u2") as second:
        settings = gateway_settings({"user-service": [upstream.url, second.url]}, jwks_url=upstream.url + JWKS_PATH)
        headers = tokens.auth_header(uuid.uuid4(), "tutor")
        async with running_gateway(settings, clock=clock) as gateway, gateway.client(headers=headers) as client:
            second.state.ready_status = 503
            await gateway.gateway.registry.refresh()
            services = (await client.get("/gateway/services")).json()["services"]
            instances = {i["address"]: i for i in services["user-service"]["instances"]}
            assert services["user-service"]["status"] == "degraded"
            sick = instances[second.url.removeprefix("http://")]
            assert sick["healthy"] is False and sick["last_error"] == "health check answered 503"
            assert sick["last_check"] and sick["latency_ms"] >= 0 and sick["breaker"]["state"] == "closed"
            answers = [(await client.get("/api/v1/users/me")).json()["upstream"] for _ in range(6)]
            assert set(answers) == {"u1"}

            second.state.ready_status = 200
            await gateway.gateway.registry.refresh()
            answers = [(await client.get("/api/v1/users/me")).json()["upstream"] for _ in range(6)]
            assert Counter(answers) == {"u1": 3, "u2": 3}


@pytest.mark.parametrize(("method", "retried"), [("GET", True), ("DELETE", True), ("POST", False), ("PATCH", False)])
async def test_a_refused_connection_is_retried_on_another_instance_only_when_idempotent(
    upstream: Upstream, clock: FakeClock, tokens: TokenFactory, method: str, retried: bool
) -> None:
    with serving_upstream("doomed") as doomed:
        settings = gateway_settings({"user-service": [doomed.url, upstream.url]}, jwks_url=upstream.url + JWKS_PATH)
        headers = tokens.auth_header(uuid.uuid4(), "tutor")
        async with running_gateway(settings, clock=clock) as gateway, gateway.client(headers=headers) as client:
            doomed.server.stop()  # healthy a moment ago; now nothing listens there
            responses = [await client.request(method, "/api/v1/users/me") for _ in range(4)]
    statuses = [response.status_code for response in responses]
    if retried:
        assert statuses == [200] * 4
    else:  # refused once, then the instance is out of the rotation (passive marking)
        assert sorted(statuses) == [200, 200, 200, 503]
        assert_error(next(r for r in responses if r.status_code == 503), 503, "service_unavailable")
    assert len(upstream.state.requests_to("/api/v1/users/me")) == statuses.count(200)


async def test_killing_an_instance_fails_no_idempotent_request(
    upstream: Upstream, clock: FakeClock, tokens: TokenFactory
) -> None:
    first, second = UpstreamProcess("a").start(), UpstreamProcess("b").start()
    try:
        settings = gateway_settings({"user-service": [first.url, second.url]}, jwks_url=upstream.url + JWKS_PATH)
        headers = tokens.auth_header(uuid.uuid4(), "tutor")
        async with running_gateway(settings, clock=clock) as gateway, gateway.client(headers=headers) as client:
            pool = gateway.gateway.registry.pool("user-service")
            assert pool is not None
            victim = next(instance for instance in pool.instances if instance.base_url == second.url)
            in_flight = [asyncio.ensure_future(client.get("/api/v1/users/slow?seconds=1")) for _ in range(8)]
            deadline = time.monotonic() + WAIT_SECONDS
            while victim.outstanding < 3:  # requests are waiting on the victim's answers
                assert time.monotonic() < deadline, "no request reached the second instance"
                await asyncio.sleep(0.01)
            second.kill()
            answers = await asyncio.gather(*in_flight)
            after = [await client.get("/api/v1/users/me") for _ in range(10)]
            services = (await client.get("/gateway/services")).json()["services"]["user-service"]
    finally:
        first.kill()
        second.kill()
    assert [answer.status_code for answer in answers + after] == [200] * 18
    assert {answer.json()["upstream"] for answer in answers} == {"a"}  # the victim's were retried on "a"
    assert {answer.json()["upstream"] for answer in after} == {"a"}
    [gone] = [instance for instance in services["instances"] if instance["url"] == second.url]
    assert gone["breaker"]["state"] == "open" or not gone["healthy"]  # out of the rotation
