"""The gateway in the test fleet, in front of the real user-service (started by the runner, as `make run` does)."""

from __future__ import annotations

import uuid

from shared.testing.fleet import TestFleet

PASSWORD = "correct horse battery staple"


async def test_a_client_signs_up_and_reads_itself_through_the_gateway(fleet: TestFleet) -> None:
    async with fleet.client("api-gateway") as client:
        email = f"gw-{uuid.uuid4().hex[:12]}@example.test"
        registered = await client.post(
            "/api/v1/auth/register", json={"email": email, "password": PASSWORD, "full_name": "Via Gateway"}
        )
        assert registered.status_code == 201, registered.text
        token = registered.json()["access_token"]
        me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["email"] == email
        assert me.headers["x-ratelimit-limit"] == "100"
        assert (await client.get("/api/v1/users/me")).status_code == 401
        assert (await client.get("/internal/links/a/b")).status_code == 404
        assert (await client.get("/.well-known/jwks.json")).json()["keys"]


async def test_the_fleet_gateway_knows_user_service_and_merges_its_documentation(fleet: TestFleet) -> None:
    async with fleet.client("api-gateway") as client:
        ready = await client.get("/ready")
        services = (await client.get("/gateway/services")).json()["services"]
        document = (await client.get("/openapi.json")).json()
    assert ready.status_code == 200, ready.text
    assert [i["url"] for i in services["user-service"]["instances"]] == [fleet.url("user-service")]
    assert services["user-service"]["status"] == "up"
    for path in ("/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/users/me", "/api/v1/users/{user_id}"):
        assert path in document["paths"], path
    assert not [path for path in document["paths"] if path.startswith("/internal")]
    assert document["x-services"]["user-service"] == "current"
