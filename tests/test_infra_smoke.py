import asyncpg


async def test_scratch_database_has_the_shared_tables(shared_db_url: str) -> None:
    conn = await asyncpg.connect(shared_db_url)
    try:
        names = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
    finally:
        await conn.close()
    assert {"outbox_events", "inbox_events", "idempotency_keys", "access_links"} <= names


def test_vhost_is_created(rabbit_url: str) -> None:
    assert rabbit_url.startswith("amqp://guest:guest@")
