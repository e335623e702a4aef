"""Session-wide scratch resources for tests of shared/ (each service's tests use the test fleet)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from shared.db import Database
from shared.testing import infra
from shared.testing.service import one_connection_database


@pytest.fixture(scope="session")
def test_run_id() -> str:
    return infra.run_id()


@pytest.fixture(scope="session")
def rabbit_url(test_run_id: str) -> Iterator[str]:
    """A fresh vhost for this run, removed at the end."""
    name = f"repitbot_test_{test_run_id}"
    url = infra.create_vhost(name)
    yield url
    infra.delete_vhost(name)


@pytest.fixture(scope="session")
async def shared_db_url(test_run_id: str) -> AsyncIterator[str]:
    """A scratch database with the shared tables, removed at the end."""
    name = f"repitbot_test_shared_{test_run_id}"
    url = await infra.create_scratch_database_with_shared_tables(name)
    yield url
    await infra.drop_database(name)


@pytest.fixture
async def database(shared_db_url: str) -> AsyncIterator[Database]:
    """The scratch database through a pool of one connection (a test sees what its own pool does)."""
    async with one_connection_database(shared_db_url, "shared-tests") as database:
        yield database
