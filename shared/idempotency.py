"""``Idempotency-Key`` for POSTs (DESIGN.md §3, docs/decisions/0003): one line per router.

    router = APIRouter(prefix="/api/v1/payments", route_class=IdempotentRoute)

    @router.post("/top-ups", status_code=201)
    async def top_up(body: TopUpIn, caller: CurrentUser, session: SessionDep): ...  # unchanged

Why a route class and not a dependency: the first answer must be stored in the
same transaction as the change it reports, so the code that commits has to see
the finished response (status, body, headers). A dependency never sees the
response; a middleware sees it only after the route's own transaction has
committed. The route class wraps the whole route — dependency resolution, the
handler and serialisation — so it can open the transaction, hand it to the
route through ``request.state.session`` (which ``shared.db.SessionDep`` reuses),
then store the answer and commit once.

Semantics, for a POST carrying the header and a verified caller:

- the key is scoped by the caller from the token (never by a header), so two
  callers cannot see each other's answers;
- the first request claims ``(caller, key)`` with an INSERT; a concurrent
  duplicate's INSERT waits on that row lock until the first commits, then finds
  the stored answer and replays it;
- same key, same request (method, path, query, body; JSON compared in canonical
  form) → the first answer, byte for byte, with ``Idempotent-Replayed: true``;
- same key, another request → 422;
- an error answer (4xx/5xx, or an exception) rolls back the change *and* the
  claim, so the client may retry with the same key;
- no header → the route runs as usual; a request without credentials runs as
  usual too (there is no verified caller to scope the key by);
- keys are 1–255 characters (422 otherwise).

A route makes its change through ``SessionDep`` (and events through the outbox on
that session), so they commit with the stored answer. Only buffered responses
can be remembered; an idempotent route must not stream.
Stored answers are kept for ``idempotency_retention_days`` (shared/housekeeping.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth.deps import authenticate
from shared.db import Database
from shared.errors import Unprocessable
from shared.tables import idempotency_keys

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# headers recomputed when the stored answer is sent again
_NOT_STORED_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})

RouteHandler = Callable[[Request], Coroutine[Any, Any, Response]]


class IdempotentRoute(APIRoute):
    def get_route_handler(self) -> RouteHandler:
        run_route = super().get_route_handler()

        async def handle(request: Request) -> Response:
            key = request.headers.get(IDEMPOTENCY_HEADER)
            if request.method != "POST" or key is None:
                return await run_route(request)
            _check_key(key)
            caller = await authenticate(request)
            if caller is None:
                return await run_route(request)
            return await _run_once(request, run_route, caller_id=caller.id, key=key)

        return handle


def _check_key(key: str) -> None:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise Unprocessable(
            f"{IDEMPOTENCY_HEADER} must be 1 to {MAX_KEY_LENGTH} printable characters",
            details=[{"field": IDEMPOTENCY_HEADER, "message": "invalid idempotency key", "type": "value_error"}],
        )


async def _run_once(request: Request, run_route: RouteHandler, *, caller_id: str, key: str) -> Response:
    fingerprint = await _request_fingerprint(request)
    database: Database = request.app.state.db
    async with database.sessionmaker() as session:
        if not await _claim(session, request, caller_id=caller_id, key=key, fingerprint=fingerprint):
            stored = await _stored_answer(session, caller_id=caller_id, key=key)
            await session.rollback()
            return _replay(stored, fingerprint)

        request.state.session = session  # SessionDep hands the route this transaction
        try:
            response = await run_route(request)
        finally:
            del request.state.session
        if response.status_code >= 400:
            await session.rollback()  # the change and the claim go: the client may retry
            return response
        await _store_answer(session, caller_id=caller_id, key=key, response=response)
        await session.commit()
        return response


async def _request_fingerprint(request: Request) -> str:
    body = await request.body()  # cached on the request; the route reads the same bytes
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        canonical = body
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.url.path.encode(), request.url.query.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))  # length-prefixed: no two splits collide
        digest.update(part)
    return digest.hexdigest()


async def _claim(session: AsyncSession, request: Request, *, caller_id: str, key: str, fingerprint: str) -> bool:
    """Insert the key's row; False when it exists (after waiting for a concurrent first request)."""
    claimed = await session.scalar(
        insert(idempotency_keys)
        .values(
            caller=caller_id,
            key=key,
            method=request.method,
            path=request.url.path[:500],
            request_hash=fingerprint,
        )
        .on_conflict_do_nothing(index_elements=[idempotency_keys.c.caller, idempotency_keys.c.key])
        .returning(idempotency_keys.c.key)
    )
    return claimed is not None


async def _stored_answer(session: AsyncSession, *, caller_id: str, key: str) -> Any:
    result = await session.execute(
        select(
            idempotency_keys.c.request_hash,
            idempotency_keys.c.status_code,
            idempotency_keys.c.response_body,
            idempotency_keys.c.response_headers,
        ).where(idempotency_keys.c.caller == caller_id, idempotency_keys.c.key == key)
    )
    return result.one()


def _replay(stored: Any, fingerprint: str) -> Response:
    if stored.request_hash != fingerprint:
        raise Unprocessable(
            f"This {IDEMPOTENCY_HEADER} was already used for a different request",
            code="idempotency_key_reused",
            details=[{"field": IDEMPOTENCY_HEADER, "message": "already used with another body", "type": "value_error"}],
        )
    body: bytes = stored.response_body or b""
    response = Response(content=body, status_code=stored.status_code)
    response.raw_headers = [
        *((name.encode("latin-1"), value.encode("latin-1")) for name, value in stored.response_headers),
        (b"content-length", str(len(body)).encode()),
        (REPLAYED_HEADER.lower().encode(), b"true"),
    ]
    return response


async def _store_answer(session: AsyncSession, *, caller_id: str, key: str, response: Response) -> None:
    body = getattr(response, "body", None)
    if not isinstance(body, bytes | memoryview):
        raise TypeError(f"{IDEMPOTENCY_HEADER} needs a buffered response, got {type(response).__name__}")
    headers = [
        [name.decode("latin-1"), value.decode("latin-1")]
        for name, value in response.raw_headers
        if name.decode("latin-1").lower() not in _NOT_STORED_HEADERS
    ]
    await session.execute(
        idempotency_keys.update()
        .where(idempotency_keys.c.caller == caller_id, idempotency_keys.c.key == key)
        .values(status_code=response.status_code, response_body=bytes(body), response_headers=headers)
    )
