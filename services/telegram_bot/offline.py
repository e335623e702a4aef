"""The bot's offline fallback (DESIGN.md §1): a local SQLite file that keeps working while the gateway does not.

Two things live in it:

- **A read cache.** ``remember(telegram_id, view, data)`` stores the last answer the bot showed for a view
  ("schedule", "balance", ...); ``recall`` gives it back with the time it was fetched, so a screen can say
  "as of 14:05" when the gateway is down.
- **A write queue.** A write the user made while RepitBot was unreachable (a homework submission, a lesson
  completion, a top-up) is queued with ``enqueue`` and sent later by :func:`replay`, oldest first.

Replay guarantees
-----------------
- Each write gets an ``Idempotency-Key`` (a UUID) when it is queued and is sent with that same key on every
  attempt. The server answers a repeated key with its first answer (DESIGN.md §3), so a write sent, then
  sent again because the bot died before recording the answer, has one effect.
- 2xx → ``"done"`` (the answer is kept). 4xx other than 408/429 → ``"rejected"``: recorded, never retried
  (e.g. 409, the lesson was completed meanwhile); ``on_result`` lets the bot tell the user. A connection
  error, 5xx, 408 or 429 → ``"unavailable"``: the write and everything after it stay pending, in order,
  and the replay stops (the next write could depend on this one).
- A replay claims one write at a time with a lease, in one ``UPDATE``: only the head of the queue, and only
  if nobody else holds it. Two replays running at once therefore never send the same write concurrently
  and never overtake each other. A lease left by a crashed process expires after ``lease_seconds``.

Writes that depend on earlier writes
------------------------------------
A write may need the answer of an earlier one, e.g. upload a homework file to material-service, then
submit the homework with the new material's id. Queue both, declaring the dependency, and put a
placeholder where the value goes::

    upload = await store.enqueue(tid, "material.upload", "POST", "/api/v1/materials",
                                 files={"file": ("work.jpg", data, "image/jpeg")}, form={"kind": "homework"},
                                 description="photo of the homework")
    await store.enqueue(tid, "homework.submit", "POST", f"/api/v1/homework/{hw_id}/submissions",
                        json_body={"text": text, "material_ids": [ref(upload)]},  # "$ref:<upload id>.id"
                        depends_on=upload.id, description="homework submission")

- A placeholder is a whole string value ``"$ref:<write id>.<field>[.<field>...]"`` (a field is a key of
  the answer's JSON object or an index into a list). It may appear anywhere in ``json_body`` (nested),
  as a ``form`` value, or as one segment of ``path`` (``/api/v1/lessons/$ref:<id>.id/complete``). It is
  replaced, at replay time, by that value of the earlier write's stored answer.
- Only writes named in ``depends_on`` are resolved: a placeholder naming any other id stays literal text,
  so nothing a user types can reach into the queue. Dependencies must be queued for the same Telegram
  user before the dependent write (so they come first in the queue).
- A write whose dependency was rejected is rejected too, without being sent; so is one whose dependency's
  answer lacks the named field. The resolved body depends only on the stored answer, so every attempt
  sends the same body with the same key.

One SQLite connection per call (in a worker thread, via ``asyncio.to_thread``), WAL mode so a reader never
waits for a writer; the stdlib ``sqlite3`` only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import sqlite3
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote

from shared.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)

Outcome = Literal["done", "rejected", "unavailable"]
DONE: Outcome = "done"
REJECTED: Outcome = "rejected"
UNAVAILABLE: Outcome = "unavailable"

PENDING = "pending"
RETRY_LATER_STATUSES = frozenset({408, 429})
DEFAULT_LEASE_SECONDS = 300.0  # longer than any send (timeouts × retries), short enough to recover from a crash
SCHEMA_VERSION = 1
REF_PREFIX = "$ref:"
_REF = re.compile(
    r"^\$ref:(?P<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"\.(?P<path>[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)$"
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cache (
    telegram_id INTEGER NOT NULL,
    view TEXT NOT NULL,
    data TEXT NOT NULL,
    fetched_at TEXT NOT NULL,
    PRIMARY KEY (telegram_id, view)
);
CREATE TABLE IF NOT EXISTS writes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- queue order (times may tie)
    id TEXT NOT NULL UNIQUE,
    telegram_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    json_body TEXT,
    form TEXT,
    description TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    depends_on TEXT NOT NULL DEFAULT '[]',  -- JSON list of write ids
    status TEXT NOT NULL DEFAULT 'pending',  -- pending | done | rejected
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until TEXT,
    created_at TEXT NOT NULL,
    last_attempt_at TEXT,
    finished_at TEXT,
    answer_status INTEGER,
    answer TEXT,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS ix_writes_status_seq ON writes (status, seq);
CREATE TABLE IF NOT EXISTS write_files (
    write_id TEXT NOT NULL REFERENCES writes (id) ON DELETE CASCADE,
    field TEXT NOT NULL,
    filename TEXT NOT NULL,
    mime TEXT NOT NULL,
    content BLOB NOT NULL,
    PRIMARY KEY (write_id, field)
);
"""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Cached:
    data: Any
    fetched_at: datetime  # aware UTC


@dataclass(frozen=True, slots=True)
class QueuedWrite:
    id: str
    telegram_id: int
    kind: str
    method: str
    path: str
    idempotency_key: str
    description: str
    created_at: datetime
    json_body: dict[str, Any] | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None  # field → (filename, content, mime)
    form: dict[str, str] | None = None
    depends_on: tuple[str, ...] = ()
    status: str = PENDING
    attempts: int = 0
    answer_status: int | None = None
    answer: Any = None
    reason: str | None = None
    finished_at: datetime | None = field(default=None)


Send = Callable[[QueuedWrite], Awaitable[tuple[int, Any]]]
OnResult = Callable[[QueuedWrite, str], Awaitable[None]]


def ref(write: QueuedWrite | str, field_path: str = "id") -> str:
    """The placeholder for a value of an earlier write's answer: ``"$ref:<write id>.<field_path>"``."""
    write_id = write.id if isinstance(write, QueuedWrite) else write
    return f"{REF_PREFIX}{write_id}.{field_path}"


class UnresolvedReference(Exception):
    """A placeholder names a field the dependency's answer does not have."""


class OfflineStore:
    def __init__(
        self, path: str | Path, clock: Clock = SYSTEM_CLOCK, *, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> None:
        self.path = Path(path)
        self.clock = clock
        self.lease_seconds = lease_seconds
        self._opened = False

    # --- lifecycle -----------------------------------------------------------------------------

    async def open(self) -> None:
        """Create the file and its tables (idempotent: a restart reopens the same queue)."""

        def create(conn: sqlite3.Connection) -> None:
            conn.execute("PRAGMA journal_mode=WAL")  # persistent in the file
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

        await asyncio.to_thread(self.path.parent.mkdir, parents=True, exist_ok=True)
        self._opened = True
        await self._run(create)

    def close(self) -> None:
        # nothing held open between calls; later calls fail loudly instead of reopening a closed store
        self._opened = False

    # --- read cache ----------------------------------------------------------------------------

    async def remember(self, telegram_id: int, view: str, data: Any) -> None:
        payload, fetched_at = json.dumps(data), _iso(self.clock.now())
        await self._run(
            lambda conn: conn.execute(
                "INSERT INTO cache (telegram_id, view, data, fetched_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (telegram_id, view) DO UPDATE SET data = excluded.data, fetched_at = excluded.fetched_at",
                (telegram_id, view, payload, fetched_at),
            )
        )

    async def recall(self, telegram_id: int, view: str) -> Cached | None:
        row = await self._run(
            lambda conn: conn.execute(
                "SELECT data, fetched_at FROM cache WHERE telegram_id = ? AND view = ?", (telegram_id, view)
            ).fetchone()
        )
        return None if row is None else Cached(json.loads(row["data"]), _parse(row["fetched_at"]))

    async def forget(self, telegram_id: int, view: str | None = None) -> None:
        """Drop one cached view, or all of a user's (e.g. when they sign out)."""
        if view is None:
            sql, params = "DELETE FROM cache WHERE telegram_id = ?", (telegram_id,)
        else:
            sql, params = "DELETE FROM cache WHERE telegram_id = ? AND view = ?", (telegram_id, view)
        await self._run(lambda conn: conn.execute(sql, params))

    # --- write queue ---------------------------------------------------------------------------

    async def enqueue(
        self,
        telegram_id: int,
        kind: str,
        method: str,
        path: str,
        *,
        json_body: dict[str, Any] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        form: dict[str, str] | None = None,
        description: str,
        depends_on: str | Iterable[str] = (),
        idempotency_key: str | None = None,
    ) -> QueuedWrite:
        """Queue a write for replay; its Idempotency-Key is fixed now (``idempotency_key``: one the caller
        already used, e.g. a flow's) and reused on every attempt. Queuing a key already queued for this
        user returns that write instead of a second one (the same request, so one effect)."""
        if json_body is not None and (files or form):
            raise ValueError("a write sends either a JSON body or a multipart form, not both")
        deps = (depends_on,) if isinstance(depends_on, str) else tuple(dict.fromkeys(depends_on))
        write = QueuedWrite(
            id=str(uuid.uuid4()),
            telegram_id=telegram_id,
            kind=kind,
            method=method.upper(),
            path=path,
            idempotency_key=idempotency_key or str(uuid.uuid4()),
            description=description,
            created_at=self.clock.now(),
            json_body=json_body,
            files=dict(files) if files else None,
            form=dict(form) if form else None,
            depends_on=deps,
        )
        body = None if json_body is None else json.dumps(json_body)  # fails now, not at replay, if not JSON

        def insert(conn: sqlite3.Connection) -> QueuedWrite | None:
            with _transaction(conn):
                same = conn.execute("SELECT * FROM writes WHERE idempotency_key = ?", (write.idempotency_key,))
                if (row := same.fetchone()) is not None:
                    if row["telegram_id"] != telegram_id:
                        raise ValueError("this Idempotency-Key is queued for another user")
                    return _load(conn, row)
                for dep in deps:
                    owner = conn.execute("SELECT telegram_id FROM writes WHERE id = ?", (dep,)).fetchone()
                    if owner is None or owner["telegram_id"] != telegram_id:
                        raise ValueError(f"depends_on {dep!r} is not a queued write of this user")
                conn.execute(
                    "INSERT INTO writes (id, telegram_id, kind, method, path, json_body, form, description, "
                    "idempotency_key, depends_on, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        write.id,
                        telegram_id,
                        kind,
                        write.method,
                        path,
                        body,
                        None if write.form is None else json.dumps(write.form),
                        description,
                        write.idempotency_key,
                        json.dumps(list(deps)),
                        _iso(write.created_at),
                    ),
                )
                conn.executemany(
                    "INSERT INTO write_files (write_id, field, filename, mime, content) VALUES (?, ?, ?, ?, ?)",
                    [(write.id, name, fname, mime, content) for name, (fname, content, mime) in (files or {}).items()],
                )
            return None

        return await self._run(insert) or write

    async def pending(self, telegram_id: int | None = None) -> list[QueuedWrite]:
        """Writes not yet done or rejected, oldest first (including one being sent right now)."""

        def select(conn: sqlite3.Connection) -> list[QueuedWrite]:
            sql = "SELECT * FROM writes WHERE status = 'pending'"
            params: tuple[Any, ...] = ()
            if telegram_id is not None:
                sql, params = sql + " AND telegram_id = ?", (telegram_id,)
            return [_load(conn, row) for row in conn.execute(sql + " ORDER BY seq", params).fetchall()]

        return await self._run(select)

    async def get(self, write_id: str) -> QueuedWrite | None:
        def select(conn: sqlite3.Connection) -> QueuedWrite | None:
            row = conn.execute("SELECT * FROM writes WHERE id = ?", (write_id,)).fetchone()
            return None if row is None else _load(conn, row)

        return await self._run(select)

    async def mark_done(self, write_id: str, status: int, answer: Any) -> bool:
        """Record the server's answer; False if the write was already settled (e.g. by another replay)."""
        return await self._settle(write_id, DONE, status, answer, None)

    async def mark_failed(self, write_id: str, status: int | None, reason: str) -> bool:
        """Record a refusal: the write is never sent again."""
        return await self._settle(write_id, REJECTED, status, None, reason)

    async def attempted(self, write_id: str) -> int:
        """Count one attempt to send; returns the count so far."""
        now = _iso(self.clock.now())
        row = await self._run(
            lambda conn: conn.execute(
                "UPDATE writes SET attempts = attempts + 1, last_attempt_at = ? WHERE id = ? RETURNING attempts",
                (now, write_id),
            ).fetchone()
        )
        if row is None:
            raise KeyError(write_id)
        return int(row["attempts"])

    # --- used by replay ------------------------------------------------------------------------

    async def claim_next(self, owner: str, telegram_id: int | None = None) -> QueuedWrite | None:
        """Lease the head of the queue for ``owner`` and count the attempt, in one UPDATE.

        None when the queue is empty or its head is leased by someone else: never skip ahead of a write
        in flight, or the queue's order (and a dependency's answer) could be overtaken."""
        now = self.clock.now()
        until = now + timedelta(seconds=self.lease_seconds)
        scope, params = ("AND telegram_id = :tid", {"tid": telegram_id}) if telegram_id is not None else ("", {})

        def claim(conn: sqlite3.Connection) -> QueuedWrite | None:
            row = conn.execute(
                "UPDATE writes SET lease_owner = :owner, lease_until = :until, attempts = attempts + 1, "
                "last_attempt_at = :now "
                f"WHERE seq = (SELECT seq FROM writes WHERE status = 'pending' {scope} ORDER BY seq LIMIT 1) "
                "AND (lease_until IS NULL OR lease_until <= :now) RETURNING *",
                {"owner": owner, "until": _iso(until), "now": _iso(now), **params},
            ).fetchone()
            return None if row is None else _load(conn, row)

        return await self._run(claim)

    async def release(self, write_id: str, owner: str) -> None:
        """Give a claimed write back to the queue (still pending, same key)."""
        await self._run(
            lambda conn: conn.execute(
                "UPDATE writes SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
                (write_id, owner),
            )
        )

    async def answers_of(self, write_ids: Iterable[str]) -> dict[str, QueuedWrite]:
        ids = list(write_ids)

        def select(conn: sqlite3.Connection) -> dict[str, QueuedWrite]:
            marks = ",".join("?" * len(ids))
            rows = conn.execute(f"SELECT * FROM writes WHERE id IN ({marks})", ids).fetchall()
            return {row["id"]: _load(conn, row, with_files=False) for row in rows}

        return await self._run(select) if ids else {}

    # --- internals -----------------------------------------------------------------------------

    async def _settle(
        self, write_id: str, status: str, http_status: int | None, answer: Any, reason: str | None
    ) -> bool:
        answer_json = None if answer is None else json.dumps(answer)
        now = _iso(self.clock.now())

        def update(conn: sqlite3.Connection) -> bool:
            with _transaction(conn):
                changed = conn.execute(
                    "UPDATE writes SET status = ?, answer_status = ?, answer = ?, reason = ?, finished_at = ?, "
                    "lease_owner = NULL, lease_until = NULL WHERE id = ? AND status = 'pending'",
                    (status, http_status, answer_json, reason, now, write_id),
                ).rowcount
                # a settled write is never sent again: its files are dead weight
                conn.execute("DELETE FROM write_files WHERE write_id = ?", (write_id,))
            return bool(changed)

        return await self._run(update)

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if not self._opened:
            raise RuntimeError("OfflineStore is not open")
        return await asyncio.to_thread(self._call, fn)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        # autocommit: a single statement is its own transaction; several use _transaction
        with closing(sqlite3.connect(self.path, timeout=10.0, isolation_level=None)) as conn:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys=ON")
            return fn(conn)


async def replay(
    store: OfflineStore,
    send: Send,
    *,
    on_result: OnResult | None = None,
    telegram_id: int | None = None,
) -> list[tuple[QueuedWrite, str]]:
    """Send the pending writes in order (one user's with ``telegram_id``), each with its own Idempotency-Key.

    ``send`` gets the write with its placeholders resolved and returns ``(HTTP status, answer JSON)``; an
    exception from it counts as a connection error. Returns each write handled with its outcome
    (the write as recorded); the last one is ``"unavailable"`` if the replay stopped early."""
    owner = str(uuid.uuid4())
    results: list[tuple[QueuedWrite, str]] = []
    while (write := await store.claim_next(owner, telegram_id)) is not None:
        outcome, recorded = await _replay_one(store, send, write, owner)
        results.append((recorded, outcome))
        if on_result is not None:
            try:
                await on_result(recorded, outcome)
            except Exception:  # the outcome is recorded; a failed notice must not hold up the queue
                log.exception("on_result failed for offline write %s", write.id)
        if outcome == UNAVAILABLE:
            break
    return results


async def _replay_one(store: OfflineStore, send: Send, write: QueuedWrite, owner: str) -> tuple[str, QueuedWrite]:
    try:
        deps = await store.answers_of(write.depends_on)
        blocked = _blocked_by(write, deps)
        if blocked is not None:
            return REJECTED, await _reject(store, write, None, blocked)
        if any(deps[dep].status == PENDING for dep in write.depends_on):
            # cannot happen while dependencies are queued first for the same user; keep it pending, loudly
            log.error("offline write %s reached the head of the queue before its dependency", write.id)
            await store.release(write.id, owner)
            return UNAVAILABLE, write
        try:
            resolved = resolve(write, deps)
        except UnresolvedReference as exc:
            return REJECTED, await _reject(store, write, None, str(exc))

        try:
            status, answer = await send(resolved)
        except Exception as exc:  # no answer: it may or may not have had its effect; the key makes a resend safe
            log.warning("offline write %s (%s) not sent: %r", write.id, write.kind, exc)
            await store.release(write.id, owner)
            return UNAVAILABLE, write

        if 200 <= status < 300:
            await store.mark_done(write.id, status, answer)
            return DONE, dataclasses.replace(write, status=DONE, answer_status=status, answer=answer)
        if status >= 500 or status in RETRY_LATER_STATUSES:
            log.info("offline write %s (%s): HTTP %d, retrying later", write.id, write.kind, status)
            await store.release(write.id, owner)
            return UNAVAILABLE, write
        return REJECTED, await _reject(store, write, status, _reason(status, answer), answer)
    except BaseException:
        # cancelled (bot shutting down) or a store failure: let the next replay take it at once
        try:
            await asyncio.shield(store.release(write.id, owner))
        except Exception:  # the lease will expire instead
            log.exception("could not release offline write %s", write.id)
        raise


async def _reject(
    store: OfflineStore, write: QueuedWrite, status: int | None, reason: str, answer: Any = None
) -> QueuedWrite:
    await store.mark_failed(write.id, status, reason)
    return dataclasses.replace(write, status=REJECTED, answer_status=status, answer=answer, reason=reason)


def _blocked_by(write: QueuedWrite, deps: dict[str, QueuedWrite]) -> str | None:
    for dep_id in write.depends_on:
        dep = deps.get(dep_id)
        if dep is None:
            return f"depends on write {dep_id}, which is gone"
        if dep.status == REJECTED:
            return f"depends on a rejected write: {dep.description}"
    return None


def resolve(write: QueuedWrite, deps: dict[str, QueuedWrite]) -> QueuedWrite:
    """The write with each ``$ref:`` placeholder naming one of its dependencies replaced by the value."""
    if not write.depends_on:
        return write
    answers = {dep_id: deps[dep_id].answer for dep_id in write.depends_on}

    def value(text: str) -> Any:
        match = _REF.match(text)
        if match is None or match["id"] not in answers:
            return text  # not a placeholder for a declared dependency: literal text
        current = answers[match["id"]]
        for key in match["path"].split("."):
            if isinstance(current, dict) and key in current:
                current = current[key]
            elif isinstance(current, list) and key.isdigit() and int(key) < len(current):
                current = current[int(key)]
            else:
                raise UnresolvedReference(f"the answer of an earlier write has no {match['path']!r}")
        return current

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return value(node)
        if isinstance(node, dict):
            return {key: walk(item) for key, item in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    def segment(part: str) -> str:
        resolved = value(part)
        return part if resolved is part else quote(str(resolved), safe="")

    return dataclasses.replace(
        write,
        path="/".join(segment(part) for part in write.path.split("/")),
        json_body=None if write.json_body is None else walk(write.json_body),
        form=None if write.form is None else {key: str(walk(item)) for key, item in write.form.items()},
    )


def _reason(status: int, answer: Any) -> str:
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        message = answer["error"].get("message")
        if message:
            return str(message)
    return f"HTTP {status}"


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT: take the write lock up front, so two writers wait for each other
    (busy timeout) instead of failing on a lock upgrade."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _load(conn: sqlite3.Connection, row: sqlite3.Row, *, with_files: bool = True) -> QueuedWrite:
    files = None
    if with_files:
        rows = conn.execute(
            "SELECT field, filename, mime, content FROM write_files WHERE write_id = ? ORDER BY rowid", (row["id"],)
        ).fetchall()
        files = {r["field"]: (r["filename"], bytes(r["content"]), r["mime"]) for r in rows} or None
    return QueuedWrite(
        id=row["id"],
        telegram_id=row["telegram_id"],
        kind=row["kind"],
        method=row["method"],
        path=row["path"],
        idempotency_key=row["idempotency_key"],
        description=row["description"],
        created_at=_parse(row["created_at"]),
        json_body=None if row["json_body"] is None else json.loads(row["json_body"]),
        files=files,
        form=None if row["form"] is None else json.loads(row["form"]),
        depends_on=tuple(json.loads(row["depends_on"])),
        status=row["status"],
        attempts=row["attempts"],
        answer_status=row["answer_status"],
        answer=None if row["answer"] is None else json.loads(row["answer"]),
        reason=row["reason"],
        finished_at=None if row["finished_at"] is None else _parse(row["finished_at"]),
    )


def _iso(moment: datetime) -> str:
    # one fixed-width UTC format, so stored times compare correctly as text (lease expiry)
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)
