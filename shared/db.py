"""Async database access (SQLAlchemy 2 + asyncpg), one way for every service.

Each service declares its tables on its own ``Base = make_base()`` so the whole
fleet can be imported in one process without mixing metadata. The tables every
service carries (outbox, inbox, idempotency keys, access links) live on
``SHARED_METADATA``; a service's Alembic environment targets both.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Hashable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, event, text
from sqlalchemy.exc import DisconnectionError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction

from shared.errors import Conflict

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SHARED_METADATA = MetaData(naming_convention=NAMING_CONVENTION)

UNIQUE_VIOLATION = "23505"  # PostgreSQL's SQLSTATE

log = logging.getLogger(__name__)

_AFTER_COMMIT = "after_commit_callbacks"


def after_commit(session: AsyncSession | Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the session's transaction has committed, never if it rolls back.

    For effects outside the database (in-process metrics): done inside the transaction, a
    rollback and the event's redelivery would count them twice.
    """
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


_DONE_IN = "done_in_transaction"  # session.info: what was done, and the (sub)transaction it was done in


def first_time_in_transaction(session: AsyncSession, what: Hashable) -> bool:
    """True the first time ``what`` is asked about in the session's transaction, and remembered.

    For a statement whose effect lasts until the transaction ends (a NOTIFY, a transaction-level
    lock), so that doing it again is a round trip for nothing. A savepoint rolled back forgets what
    was done inside it (PostgreSQL undoes it too); a new transaction starts with nothing done.
    """
    sync = session.sync_session
    current = sync.get_nested_transaction() or sync.get_transaction()
    done = session.info.setdefault(_DONE_IN, {})
    done_in = done.get(what)
    enclosing = current
    while done_in is not None and enclosing is not None:
        if enclosing is done_in and enclosing.is_active:
            return False
        enclosing = enclosing.parent
    done[what] = current
    return True


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    for callback in session.info.pop(_AFTER_COMMIT, []):
        try:
            callback()
        except Exception:  # the commit stands; a failing side effect must not undo the caller's success
            log.exception("after-commit callback failed")


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    if not previous_transaction.nested:  # a savepoint's rollback leaves the outer transaction's work
        session.info.pop(_AFTER_COMMIT, None)


def make_base() -> type[DeclarativeBase]:
    """A declarative base with its own metadata and the naming convention."""

    class Base(DeclarativeBase):
        metadata = MetaData(naming_convention=NAMING_CONVENTION)
        type_annotation_map = {datetime: DateTime(timezone=True)}

    return Base


def async_url(url: str) -> str:
    """Accept a plain ``postgresql://`` DSN and use the asyncpg driver."""
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def asyncpg_dsn(url: str) -> str:
    """The same DSN for a raw asyncpg connection (LISTEN/NOTIFY)."""
    return async_url(url).replace("postgresql+asyncpg://", "postgresql://", 1)


IDLE_PING_SECONDS = 2.0  # a pooled connection idle longer than this is pinged before it is used again


class Database:
    def __init__(
        self,
        url: str,
        *,
        service: str,
        pool_size: int = 10,
        max_overflow: int = 10,
        idle_ping_seconds: float = IDLE_PING_SECONDS,
    ) -> None:
        self.url = async_url(url)
        self.service = service
        self.engine: AsyncEngine = create_async_engine(
            self.url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_recycle=1800,
            connect_args={"timeout": 5, "command_timeout": 30, "server_settings": {"application_name": service}},
        )
        _ping_when_idle(self.engine, idle_ping_seconds)
        # session.info["service"] tells the outbox which service produced an event
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, info={"service": service})

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self.sessionmaker() as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    def pool_status(self) -> dict[str, Any]:
        pool = self.engine.pool
        return {
            "size": getattr(pool, "size", lambda: 0)(),
            "checked_out": getattr(pool, "checkedout", lambda: 0)(),
            "overflow": getattr(pool, "overflow", lambda: 0)(),
        }

    async def dispose(self) -> None:
        await self.engine.dispose()


def _ping_when_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """``pool_pre_ping``, for connections that sat in the pool longer than ``idle_seconds`` only.

    A connection the database dropped while it was idle (a restart, an idle timeout) is found at
    checkout and replaced, so no request or event pays for it. Pinging every checkout cost a round
    trip per request, consumer batch and relay pass (docs/performance.md, the event path); a
    connection returned moments ago is alive but for a restart in those moments, and then its first
    statement fails, SQLAlchemy discards every connection of the pool made before, and the caller's
    usual error path (503, or the consumer's retry) takes it from there."""
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    @event.listens_for(pool, "checkin")
    def _returned(dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        returned_at = record.info.get("returned_at")
        if returned_at is None or time.monotonic() - returned_at < idle_seconds:
            return  # new, or in use moments ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("a pooled connection was dropped while idle") from exc  # the pool reconnects


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    outer: AsyncSession | None = getattr(request.state, "session", None)
    if outer is not None:  # the idempotency wrapper owns this transaction and its commit
        yield outer
        return
    database: Database = request.app.state.db
    async with database.transaction() as session:
        yield session


# scope="function": the transaction commits before the response is sent, so a
# client that reads right after a write sees it, and a failed commit is an error.
SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]


def unique_violation(exc: IntegrityError) -> str | None:
    """The unique constraint (or unique index) a statement broke, by name; None for any other integrity error.

    With the naming convention above a ``unique=True`` column's constraint is
    ``uq_<table>_<column>``.
    """
    if getattr(exc.orig, "sqlstate", None) != UNIQUE_VIOLATION:
        return None
    return getattr(getattr(exc.orig, "driver_exception", None), "constraint_name", None)


@contextmanager
def unique_conflicts(conflicts: Mapping[str, tuple[str, str]]) -> Iterator[None]:
    """Turn a broken unique constraint named in ``conflicts`` into a 409; other errors pass unchanged.

    ``conflicts`` maps a constraint name to the ``(code, message)`` of its :class:`Conflict`.
    A failed statement spoils the transaction, so flush inside a savepoint when the
    caller wants to carry on after the conflict:

        with unique_conflicts({"uq_users_email": ("email_taken", "An account with this email already exists")}):
            async with session.begin_nested():
                await session.flush()
    """
    try:
        yield
    except IntegrityError as exc:
        conflict = conflicts.get(unique_violation(exc) or "")
        if conflict is None:
            raise
        code, message = conflict
        raise Conflict(message, code=code) from exc
