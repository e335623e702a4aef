"""user-service's own housekeeping (``app.own_purges``, run with the shared tables' by shared/housekeeping.py):
refresh tokens and never-used invites go once they expired ``*_RETENTION_DAYS`` ago, nothing else."""

from __future__ import annotations

import asyncpg
import httpx
from fastapi import FastAPI

from services.user_service.app import own_purges
from services.user_service.domain.tokens import token_digest
from services.user_service.settings import UserServiceSettings
from services.user_service.tests.conftest import PASSWORD, Api, assert_error, unique_email
from shared.housekeeping import purge


async def _expire(db: asyncpg.Pool, table: str, column: str, secret: str, days_ago: int) -> None:
    await db.execute(
        f"UPDATE {table} SET expires_at = now() - make_interval(days => $2) WHERE {column} = $1",
        token_digest(secret),
        days_ago,
    )


async def _present(db: asyncpg.Pool, table: str, column: str, secret: str) -> bool:
    return bool(await db.fetchval(f"SELECT count(*) FROM {table} WHERE {column} = $1", token_digest(secret)))


async def test_expired_refresh_tokens_and_unused_invites_go_after_their_retention(
    client: httpx.AsyncClient, api: Api, app: FastAPI, db: asyncpg.Pool, settings: UserServiceSettings
) -> None:
    assert (settings.refresh_token_retention_days, settings.invite_retention_days) == (30, 30)
    long_gone, recently_expired, current = await api.tutor(), await api.tutor(), await api.tutor()
    await _expire(db, "refresh_tokens", "token_hash", long_gone.refresh_token, 31)
    await _expire(db, "refresh_tokens", "token_hash", recently_expired.refresh_token, 29)

    tutor = await api.tutor()
    unused_long_ago, unused_recently, redeemed = [await api.invite(tutor) for _ in range(3)]
    await api.register(invite_code=redeemed["code"])
    for invite, days_ago in ((unused_long_ago, 31), (unused_recently, 29), (redeemed, 31)):
        await _expire(db, "invites", "code_hash", invite["code"], days_ago)

    await purge(app.state.db, own_purges(settings))

    tokens = {
        name: await _present(db, "refresh_tokens", "token_hash", account.refresh_token)
        for name, account in (("31 days", long_gone), ("29 days", recently_expired), ("current", current))
    }
    assert tokens == {"31 days": False, "29 days": True, "current": True}
    invites = {
        name: await _present(db, "invites", "code_hash", invite["code"])
        for name, invite in (("unused 31", unused_long_ago), ("unused 29", unused_recently), ("redeemed", redeemed))
    }
    assert invites == {"unused 31": False, "unused 29": True, "redeemed": True}
    # what a client sees: the deleted token and code are unknown; the current token still refreshes
    gone = await client.post("/api/v1/auth/refresh", json={"refresh_token": long_gone.refresh_token})
    assert_error(gone, 401, "invalid_refresh_token")
    assert (await client.post("/api/v1/auth/refresh", json={"refresh_token": current.refresh_token})).status_code == 200
    unknown = await client.post(
        "/api/v1/auth/register",
        json={
            "email": unique_email(),
            "password": PASSWORD,
            "full_name": "Late",
            "invite_code": unused_long_ago["code"],
        },
    )
    assert_error(unknown, 422, "invite_invalid")
