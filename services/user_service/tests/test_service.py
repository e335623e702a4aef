"""The service as operators see it: ready at the migrated schema, models matching migrations, the API document."""

from __future__ import annotations

import httpx

from shared.testing import infra
from shared.testing.events import eventually


async def test_ready_at_the_latest_migration(client: httpx.AsyncClient) -> None:
    async def ready() -> bool:
        return (await client.get("/ready")).status_code == 200

    await eventually(ready, what="/ready answers 200")  # the broker connects in the background after start-up
    assert (await client.get("/ready")).json()["checks"] == {"database": "healthy", "broker": "healthy"}


async def test_the_migrations_create_exactly_the_models(database_url: str) -> None:
    diff = await infra.schema_differences("user-service", database_url)
    assert diff == [], f"the models and the migrations differ; add a revision: {diff}"


async def test_the_api_document_lists_the_public_routes_only(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ("/api/v1/auth/register", "/api/v1/auth/telegram", "/api/v1/users/students", "/.well-known/jwks.json"):
        assert path in paths
    assert not any(path.startswith("/internal") for path in paths)
