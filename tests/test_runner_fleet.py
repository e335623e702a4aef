"""The test fleet end to end: real processes under their own supervisord, on test ports only."""

from __future__ import annotations

import socket
import uuid
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest

from shared.fleet import FLEET, TEST_PORT_OFFSET, ServiceSpec
from shared.runner import lifecycle
from shared.runner.layout import FleetLayout
from shared.runner.servers import Endpoints
from shared.testing.fleet import TestFleet


def test_every_service_answers_ready_and_health_on_its_test_port(fleet: TestFleet) -> None:
    for spec in FLEET:
        assert fleet.url(spec.name) == f"http://127.0.0.1:{spec.port + TEST_PORT_OFFSET}"
        with fleet.sync_client(spec.name) as client:
            ready = client.get("/ready")
            health = client.get("/health")
        assert ready.status_code == 200, ready.text
        assert health.status_code == 200, health.text
        assert health.json()["service"] == spec.name


async def test_the_async_client_reaches_user_service(fleet: TestFleet) -> None:
    async with fleet.client("user-service") as client:
        response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.json()["keys"]


def test_the_services_listen_on_test_ports_only(fleet: TestFleet) -> None:
    dev_ports = {spec.port for spec in FLEET}
    test_ports = {spec.port + TEST_PORT_OFFSET for spec in FLEET}
    listening: set[int] = set()
    for pid in fleet.pids().values():
        assert pid, "a service is not running"
        process = psutil.Process(pid)
        for proc in (process, *process.children(recursive=True)):
            listening |= {c.laddr.port for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
    assert listening == test_ports
    assert not listening & dev_ports


def test_the_services_were_given_test_resources_only(fleet: TestFleet) -> None:
    dev = FleetLayout.development()
    dev_ports = {str(spec.port) for spec in FLEET}
    for spec in FLEET:
        env = fleet.env[spec.name]
        assert env["ENV"] == "test"
        for key, value in env.items():
            if key.endswith("_URL") and value.startswith("http"):
                assert str(urlsplit(value).port) not in dev_ports, f"{spec.name}: {key}={value}"
        if spec.has_database:
            assert urlsplit(env["DATABASE_URL"]).path == f"/{fleet.layout.database_name(spec)}"
            assert fleet.layout.database_name(spec).startswith("repitbot_test_")
        assert urlsplit(env["RABBITMQ_URL"]).path == f"/{fleet.layout.vhost}"
        assert fleet.layout.vhost.startswith("repitbot_test_")
        assert env["REDIS_URL"].endswith("/15")
    assert fleet.layout.supervisor_socket != dev.supervisor_socket
    assert fleet.rabbit_url.endswith(fleet.layout.vhost)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_service_that_cannot_start_fails_with_the_tail_of_its_log(tmp_path: Path) -> None:
    # Its own layout: a service whose app does not import, on a free port, with its own vhost and Redis DB.
    broken = ServiceSpec("broken-service", "broken_service", _free_port(), has_database=False)
    layout = replace(
        FleetLayout.for_test_run(f"broken{uuid.uuid4().hex[:6]}"),
        specs=(broken,),
        port_offset=0,
        redis_db=14,
        state_dir=tmp_path / "fleet",
        secrets_dir=tmp_path / "secrets",
    )
    endpoints = Endpoints.from_environment()
    try:
        prepared = lifecycle.prepare(layout, endpoints=endpoints, say=lambda _: None)
        with pytest.raises(lifecycle.FleetError) as failure:
            lifecycle.start(prepared, ready_timeout=60, say=lambda _: None)
    finally:
        lifecycle.stop(layout)
        lifecycle.teardown(layout, endpoints)
    message = str(failure.value)
    assert message.startswith(f"broken-service on http://127.0.0.1:{broken.port}: supervisord reports it FATAL")
    assert f"last lines of {layout.log_path(broken)}" in message
    assert "services.broken_service" in message  # uvicorn's import error, from the service's log
