"""What an operator relies on in every service, checked on user-service as the fleet runs it:
metrics, JSON logs that follow one request, events that carry its correlation ID,
health and readiness, and a clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest

from shared.fleet import by_name
from shared.testing.events import eventually
from shared.testing.scale import proof_scale

PASSWORD = "correct horse battery staple"


async def _register_tutor(client: httpx.AsyncClient, correlation_id: str) -> dict:
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": f"ops-{uuid.uuid4().hex[:8]}@example.test", "password": PASSWORD, "full_name": "Ops Tutor"},
        headers={"X-Correlation-ID": correlation_id},
    )
    assert response.status_code == 201, response.text
    assert response.headers["x-correlation-id"] == correlation_id
    return response.json()


async def test_metrics_cover_requests_by_route_template_pool_outbox_and_consumer(fleet) -> None:
    async with fleet.client("user-service") as client:
        tutor = await _register_tutor(client, f"metrics-{uuid.uuid4().hex[:6]}")
        me = await client.get(
            f"/api/v1/users/{tutor['user']['id']}", headers={"Authorization": f"Bearer {tutor['access_token']}"}
        )
        assert me.status_code == 200
        text = (await client.get("/metrics")).text

    # by the route's template, never the raw path (one series per route, not per user)
    assert 'route="/api/v1/users/{user_id}"' in text
    assert tutor["user"]["id"] not in text
    assert (
        'http_requests_total{method="POST",route="/api/v1/auth/register",service="user-service",status="201"}' in text
    )
    assert "http_request_duration_seconds_bucket" in text
    assert 'db_pool_connections{service="user-service",state="checked_out"}' in text
    assert 'outbox_backlog{service="user-service"}' in text
    assert "events_published_total" in text
    # two connections: the consumer's, and the outbox relay's from its own thread
    assert 'broker_connected{role="consumer",service="user-service"} 1.0' in text
    assert 'broker_connected{role="outbox-relay",service="user-service"} 1.0' in text
    # every garbage collection timed, among them the full one start-up ran before freezing its heap
    assert re.search(r'python_gc_pause_seconds_count\{generation="2",service="user-service"\} [1-9]', text), text


async def test_one_request_is_traceable_through_logs_and_the_events_it_caused(fleet) -> None:
    correlation_id = f"trace-{uuid.uuid4().hex}"
    async with fleet.client("user-service") as client:
        tutor = await _register_tutor(client, correlation_id)

    database_url = fleet.env["user-service"]["DATABASE_URL"]
    conn = await asyncpg.connect(database_url)
    try:
        envelope = await conn.fetchval(
            "SELECT envelope FROM outbox_events WHERE event_type = 'user.registered' "
            "AND envelope->'payload'->>'user_id' = $1",
            tutor["user"]["id"],
        )
    finally:
        await conn.close()
    assert json.loads(envelope)["correlation_id"] == correlation_id

    def request_logged() -> bool:
        return any(correlation_id in line for line in fleet.log_path("user-service").read_text().splitlines())

    await eventually(request_logged, what="the request's log line")
    lines = [
        json.loads(line) for line in fleet.log_path("user-service").read_text().splitlines() if correlation_id in line
    ]
    access = [line for line in lines if line.get("route") == "/api/v1/auth/register"]
    assert access, lines
    assert access[0]["service"] == "user-service"
    assert access[0]["status"] == 201
    assert {"ts", "level", "message", "correlation_id", "user_id"} <= set(access[0])


async def test_health_readiness_and_details(fleet) -> None:
    async with fleet.client("user-service") as client:
        assert (await client.get("/health")).json()["status"] == "ok"
        ready = await client.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "healthy", "broker": "healthy"}
        detailed = (await client.get("/health/detailed")).json()
        assert detailed["status"] == "healthy"
        assert detailed["checks"]["database"] == "healthy"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@asynccontextmanager
async def _second_user_service(fleet, log_path) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """A second user-service process on the fleet's database and a free port, ready; killed if still
    running at the end."""
    spec = by_name("user-service")
    port = _free_port()
    env = {**os.environ, **fleet.env["user-service"], "PORT": str(port)}
    with log_path.open("w") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "uvicorn",
            spec.app_path,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--timeout-graceful-shutdown",
            "10",
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:

            async def answers_ready() -> bool:
                try:
                    return (await client.get("/ready")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(answers_ready, timeout=30, what="the second process is ready")
        yield process, url
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def _assert_stopped_cleanly(exit_code: int, log_path) -> None:
    # uvicorn re-raises the signal once its graceful shutdown is done, so the exit is "by SIGTERM"
    assert exit_code in (0, -signal.SIGTERM), log_path.read_text()[-2000:]
    messages = [json.loads(line).get("message") for line in log_path.read_text().splitlines() if line.startswith("{")]
    assert "stopped" in messages, messages[-10:]  # our lifespan shutdown ran to its end
    assert messages.index("stopped") < messages.index("Application shutdown complete.")


async def test_sigterm_drains_and_stops_cleanly(fleet, tmp_path) -> None:
    """A second user-service process on the fleet's database: SIGTERM ends it only after its
    shutdown (requests drained, consumer stopped, outbox flushed) has run to the end."""
    log_path = tmp_path / "user-service.log"
    async with _second_user_service(fleet, log_path) as (process, url):
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            await _register_tutor(client, f"sigterm-{uuid.uuid4().hex[:6]}")
        process.send_signal(signal.SIGTERM)
        exit_code = await asyncio.wait_for(process.wait(), 30)
    _assert_stopped_cleanly(exit_code, log_path)


@pytest.mark.proof
async def test_sigterm_under_load_loses_no_accepted_request(fleet, tmp_path) -> None:
    """PROOF_SCALE registrations (8 in flight) at a second user-service process, SIGTERM a third of the
    way in. Every request either got its answer (201, and the account exists) or was never taken on
    (refused, or its connection closed unread: no account exists); none was processed and then dropped."""
    count = proof_scale()
    emails = [f"drain-{uuid.uuid4().hex[:12]}@example.test" for _ in range(count)]
    outcomes: dict[str, str] = {}
    in_flight_at_signal: list[int] = []
    log_path = tmp_path / "user-service.log"
    async with _second_user_service(fleet, log_path) as (process, url):
        semaphore = asyncio.Semaphore(8)
        in_flight = 0
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:

            async def register(email: str) -> None:
                nonlocal in_flight
                async with semaphore:
                    in_flight += 1
                    try:
                        response = await client.post(
                            "/api/v1/auth/register",
                            json={"email": email, "password": PASSWORD, "full_name": "Drain Tutor"},
                        )
                        outcomes[email] = str(response.status_code)
                    except httpx.TransportError as error:
                        outcomes[email] = type(error).__name__
                    finally:
                        in_flight -= 1
                if len(outcomes) == count // 3:
                    in_flight_at_signal.append(in_flight)
                    process.send_signal(signal.SIGTERM)

            await asyncio.gather(*(register(email) for email in emails))
        exit_code = await asyncio.wait_for(process.wait(), 30)
    _assert_stopped_cleanly(exit_code, log_path)

    assert in_flight_at_signal and in_flight_at_signal[0] > 0, "no request was in flight at SIGTERM"
    answered = {email for email, outcome in outcomes.items() if outcome == "201"}
    unanswered = set(emails) - answered
    assert {outcomes[email] for email in answered} == {"201"}
    assert len(answered) >= count // 3
    assert {outcome for outcome in outcomes.values()} <= {"201", "ConnectError", "RemoteProtocolError", "ReadError"}
    conn = await asyncpg.connect(fleet.env["user-service"]["DATABASE_URL"])
    try:
        stored = {row["email"] for row in await conn.fetch("SELECT email FROM users WHERE email = ANY($1)", emails)}
    finally:
        await conn.close()
    assert answered <= stored  # every answered request is kept
    assert not (stored & unanswered), "processed, then the answer was dropped: " + repr(sorted(stored & unanswered))
