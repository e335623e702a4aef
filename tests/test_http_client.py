"""ServiceClient against a fake user-service over loopback, behind a connection-counting proxy."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared import context
from shared.breaker import BreakerState
from shared.clock import FakeClock
from shared.errors import ServiceUnavailable
from shared.http import ServiceClient

# the fixtures module is also imported for its helpers: let pytest rewrite its asserts first
pytest.register_assert_rewrite("tests.auth_fixtures")
from tests.auth_fixtures import CountingProxy, FakeUserService, service_settings  # noqa: E402

pytest_plugins = ["tests.auth_fixtures"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_client(proxy: CountingProxy, clock: FakeClock, *, failure_threshold: int = 3) -> ServiceClient:
    return ServiceClient(
        service_settings(proxy.url),
        clock=clock,
        retries=2,
        backoff=0,
        breaker_options={"failure_threshold": failure_threshold, "failure_rate": None, "reset_timeout": 10.0},
    )


@pytest.fixture
async def client(user_service_proxy: CountingProxy, clock: FakeClock) -> AsyncIterator[ServiceClient]:
    http = make_client(user_service_proxy, clock)
    yield http
    await http.aclose()


async def test_the_service_token_and_correlation_id_are_passed_on(
    client: ServiceClient, user_service_proxy: CountingProxy, fake_user_service: FakeUserService
) -> None:
    cid = context.correlation_id.set("cid-from-the-request")
    try:
        first = await client.get(f"{user_service_proxy.url}/internal/whoami")
        second = await client.get(f"{user_service_proxy.url}/internal/whoami")
    finally:
        context.correlation_id.reset(cid)
    assert first.json() == second.json() == {"id": "lesson-service", "role": "service"}
    assert fake_user_service.seen_correlation_ids == ["cid-from-the-request"] * 2
    assert fake_user_service.hits["token"] == 1  # the token is cached


async def test_the_token_is_fetched_again_shortly_before_it_expires(
    client: ServiceClient, user_service_proxy: CountingProxy, fake_user_service: FakeUserService, clock: FakeClock
) -> None:
    await client.get(f"{user_service_proxy.url}/internal/whoami")
    clock.advance(fake_user_service.tokens.ttl_seconds - 120)
    await client.get(f"{user_service_proxy.url}/internal/whoami")
    assert fake_user_service.hits["token"] == 1
    clock.advance(90)  # inside the refresh margin
    await client.get(f"{user_service_proxy.url}/internal/whoami")
    assert fake_user_service.hits["token"] == 2


async def test_a_401_fetches_a_new_token_once(
    client: ServiceClient, user_service_proxy: CountingProxy, fake_user_service: FakeUserService
) -> None:
    await client.get(f"{user_service_proxy.url}/internal/whoami")
    fake_user_service.revoke_issued_tokens()
    response = await client.get(f"{user_service_proxy.url}/internal/whoami")
    assert response.status_code == 200
    assert fake_user_service.hits["token"] == 2
    assert fake_user_service.hits["whoami"] == 3  # ok, rejected, ok with the new token


async def test_get_is_retried_after_a_connection_failure_but_post_never(
    user_service_proxy: CountingProxy, clock: FakeClock
) -> None:
    user_service_proxy.drop_connections = True
    client = make_client(
        user_service_proxy, clock, failure_threshold=100
    )  # this test is about retries, not the breaker
    try:
        with pytest.raises(ServiceUnavailable) as failed_get:
            await client.get(f"{user_service_proxy.url}/status", authenticate=False)
        assert user_service_proxy.connections == 3  # one try and two retries
        assert failed_get.value.status_code == 503
        assert "Retry-After" in (failed_get.value.headers or {})

        with pytest.raises(ServiceUnavailable):
            await client.post(f"{user_service_proxy.url}/status", authenticate=False)
        assert user_service_proxy.connections == 4
    finally:
        await client.aclose()


async def test_gateway_errors_are_retried_on_get_only(
    client: ServiceClient, user_service_proxy: CountingProxy, fake_user_service: FakeUserService
) -> None:
    fake_user_service.status_answers.extend([503, 502])
    response = await client.get(f"{user_service_proxy.url}/status", authenticate=False)
    assert response.status_code == 200
    assert fake_user_service.hits["status GET"] == 3

    fake_user_service.status_answers.append(503)
    with pytest.raises(ServiceUnavailable):
        await client.post(f"{user_service_proxy.url}/status", authenticate=False)
    assert fake_user_service.hits["status POST"] == 1


async def test_a_post_with_an_idempotency_key_is_retried_like_a_get(
    client: ServiceClient, user_service_proxy: CountingProxy, fake_user_service: FakeUserService
) -> None:
    # the key gives the POST one effect however often it is sent
    fake_user_service.status_answers.extend([503, 504])
    keyed = {"Idempotency-Key": "submission-1"}
    response = await client.post(f"{user_service_proxy.url}/status", authenticate=False, headers=keyed)
    assert response.status_code == 200
    assert fake_user_service.hits["status POST"] == 3


async def test_client_errors_are_returned_not_retried(
    client: ServiceClient, user_service_proxy: CountingProxy, fake_user_service: FakeUserService
) -> None:
    fake_user_service.status_answers.append(404)
    response = await client.get(f"{user_service_proxy.url}/status", authenticate=False)
    assert response.status_code == 404
    assert fake_user_service.hits["status GET"] == 1


async def test_a_call_over_its_timeout_is_503(client: ServiceClient, user_service_proxy: CountingProxy) -> None:
    with pytest.raises(ServiceUnavailable):
        await client.post(f"{user_service_proxy.url}/slow", authenticate=False, timeout=0.1)


async def test_an_open_breaker_fails_fast_without_connecting_then_recovers(
    client: ServiceClient, user_service_proxy: CountingProxy, fake_user_service: FakeUserService, clock: FakeClock
) -> None:
    user_service_proxy.drop_connections = True
    with pytest.raises(ServiceUnavailable):
        await client.get(f"{user_service_proxy.url}/status", authenticate=False)  # three failed attempts: open
    breaker = client.breaker_for(user_service_proxy.url)
    assert breaker.state is BreakerState.OPEN
    connections = user_service_proxy.connections

    for _ in range(5):
        with pytest.raises(ServiceUnavailable) as rejected:
            await client.get(f"{user_service_proxy.url}/status", authenticate=False)
        assert rejected.value.headers == {"Retry-After": "10"}
    assert user_service_proxy.connections == connections  # fail-fast: the upstream saw nothing

    user_service_proxy.drop_connections = False
    clock.advance(10)
    response = await client.get(f"{user_service_proxy.url}/status", authenticate=False)  # the half-open probe
    assert response.status_code == 200
    assert breaker.state is BreakerState.CLOSED
    assert user_service_proxy.connections == connections + 1
