"""Async database access (SQLAlchemy 2 + asyncpg), one way for every service.

Each service declares its tables on its own ``Base = make_base()`` so the whole
fleet can be imported in one process without mixing metadata. The tables every
service carries (outbox, inbox, idempotency keys, access links) live on
``SHARED_METADATA``; a service's Alembic environment targets both.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Hashable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import DateTime, Executable, MetaData, event, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import await_

from shared.errors import Conflict

if TYPE_CHECKING:
    from shared.events.outbox import OutboxHandoff

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
        # set by a relay in this process that takes the events these sessions commit (shared.events.relay)
        self.outbox_handoff: OutboxHandoff | None = None
        # session.info["service"] tells the outbox which service produced an event, ["database"] where
        # its hand-off goes
        self.sessionmaker = async_sessionmaker(
            self.engine, expire_on_commit=False, info={"service": service, "database": self}
        )

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


# --- statements on the driver's connection ------------------------------------------------------------

_DRIVER_DIALECT = asyncpg_dialect()
_Model = TypeVar("_Model")


class DriverStatement:
    """A statement built with SQLAlchemy Core, compiled once for asyncpg, and run on the driver's connection
    inside a session's transaction.

    For the few statements every event on the event path runs (completing a lesson, the inbox, the
    outbox): there SQLAlchemy's execution (the compiled-cache lookup, the result's set-up, the ORM's unit
    of work) costs the caller more CPU than the round trip itself (docs/performance.md, the event path);
    everything else keeps the ORM. Values go to asyncpg as they are, without SQLAlchemy's type
    processing: a UUID as ``uuid.UUID``, JSONB as JSON text (the codec SQLAlchemy installs on its
    connections takes text and decodes to Python objects). Rows come back as ``asyncpg.Record``. A caller
    with an asyncpg connection of its own (the outbox relay) sends ``sql`` with ``arguments(...)``.
    """

    def __init__(self, statement: Executable) -> None:
        compiled = statement.compile(dialect=_DRIVER_DIALECT)
        self.sql = compiled.string
        self._names = tuple(compiled.positiontup or ())
        # values the statement was built with (literals); the caller gives the rest by name
        self._built_in = {name: compiled.params[name] for name in self._names if not compiled.binds[name].required}

    def arguments(self, values: Mapping[str, Any]) -> list[Any]:
        try:
            return [values[name] if name in values else self._built_in[name] for name in self._names]
        except KeyError as missing:
            raise TypeError(f"no value for {missing} (given: {', '.join(sorted(values))})") from None

    async def fetch(self, session: AsyncSession, **values: Any) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self._run(session, "fetch", values)
        return rows

    async def fetchrow(self, session: AsyncSession, **values: Any) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self._run(session, "fetchrow", values)
        return row

    def fetch_in_sync_hook(self, session: Session, **values: Any) -> list[asyncpg.Record]:
        """:meth:`fetch` from SQLAlchemy's synchronous side (a session event such as ``before_commit``),
        which runs inside the greenlet of the ``AsyncSession`` call that fired it."""
        connection = session.connection()
        try:
            rows: list[asyncpg.Record] = await_(self._send(connection, connection.connection, "fetch", values))
        except DBAPIError as error:
            if error.connection_invalidated:
                connection.invalidate(error.orig)
            raise
        return rows

    async def _run(self, session: AsyncSession, method: str, values: Mapping[str, Any]) -> Any:
        connection = await session.connection()
        try:
            return await self._send(connection.sync_connection, await connection.get_raw_connection(), method, values)
        except DBAPIError as error:
            if error.connection_invalidated:  # the pool drops it: the next transaction gets a new one
                await connection.invalidate(error.orig)
            raise

    async def _send(
        self, connection: Connection | None, raw: PoolProxiedConnection, method: str, values: Mapping[str, Any]
    ) -> Any:
        assert connection is not None
        arguments = self.arguments(values)
        # SQLAlchemy's before_cursor_execute listeners see it as they see their own (statement budgets
        # count with it: shared.testing.statements)
        listeners = connection.dispatch.before_cursor_execute
        if listeners:
            listeners(connection, None, self.sql, arguments, None, False)
        adapted = raw.dbapi_connection
        try:
            await _begin(adapted)
            return await getattr(raw.driver_connection, method)(self.sql, *arguments)
        except Exception as error:
            raise _as_sqlalchemy_error(connection, adapted, self.sql, arguments, error) from error


def row_snapshot(model: type[_Model], row: Mapping[str, Any]) -> _Model:
    """An instance of ``model`` holding ``row`` (read on the driver's connection, keyed by column name;
    other keys are ignored): in no session, so nothing tracks or flushes it, a read-only snapshot. Built
    the way SQLAlchemy's own loader builds one (~2 µs, against ~30 µs through the constructor)."""
    instance: _Model = sa_inspect(model).class_manager.new_instance()
    instance.__dict__.update((key, row[column]) for key, column in _column_keys(model))
    return instance


@functools.cache
def _column_keys(model: type[Any]) -> tuple[tuple[str, str], ...]:
    """(attribute, column name) for each column ``model`` maps."""
    return tuple((attribute.key, attribute.columns[0].name) for attribute in sa_inspect(model).column_attrs)


# SQLAlchemy's asyncpg adapter is used below through three members of its own (SQLAlchemy 2.1):
# ``_transaction``, ``_start_transaction`` and ``_handle_exception``. tests/test_db_driver_statements.py
# holds them to their meaning, so an upgrade that changes them fails there.


async def _begin(adapted: Any) -> None:
    """The adapter sends BEGIN lazily, with its own first statement: a statement sent on the driver's
    connection before that would run outside the transaction."""
    if adapted._transaction is None:
        await adapted._start_transaction()


def _as_sqlalchemy_error(
    connection: Connection, adapted: Any, sql: str, arguments: list[Any], error: Exception
) -> Exception:
    """What SQLAlchemy raises when one of its own statements fails so (an ``IntegrityError``, a
    ``DBAPIError`` saying whether the connection was lost, ...): callers and the API's error handlers
    need not know which way a statement went."""
    dialect = connection.dialect
    dbapi_error = dialect.loaded_dbapi.Error
    if not isinstance(error, dbapi_error):
        try:
            adapted._handle_exception(error)  # raises the adapter's translation of asyncpg's exception
        except dbapi_error as translated:
            error = translated
        except Exception:  # not the database's answer (a bug): as it is
            return error
    lost = dialect.is_disconnect(error, adapted, None)
    return DBAPIError.instance(sql, arguments, error, dbapi_error, connection_invalidated=lost, dialect=dialect)


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
