"""The offline store on real SQLite files: the read cache, the write queue and its replay."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.telegram_bot.offline import (
    DONE,
    REJECTED,
    UNAVAILABLE,
    OfflineStore,
    QueuedWrite,
    ref,
    replay,
)
from shared.clock import FakeClock

TID = 1001
OTHER_TID = 2002


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
async def store(tmp_path: Path, clock: FakeClock) -> OfflineStore:
    store = OfflineStore(tmp_path / "bot" / "offline.sqlite3", clock)
    await store.open()
    return store


class FakeServer:
    """Answers sends like the gateway would, remembering every Idempotency-Key it saw.

    ``script`` maps a write kind to the answers (or exceptions) given on successive sends of that kind."""

    def __init__(self, script: dict[str, list[Any]] | None = None) -> None:
        self.script = script or {}
        self.sent: list[QueuedWrite] = []
        self.first_answer: dict[str, tuple[int, Any]] = {}

    async def send(self, write: QueuedWrite) -> tuple[int, Any]:
        self.sent.append(write)
        if write.idempotency_key in self.first_answer:  # a repeated key gets the first answer
            return self.first_answer[write.idempotency_key]
        planned = self.script.get(write.kind, [])
        answer = planned.pop(0) if planned else (201, {"id": f"srv-{len(self.first_answer)}", "kind": write.kind})
        if isinstance(answer, BaseException):
            raise answer
        if 200 <= answer[0] < 300:
            self.first_answer[write.idempotency_key] = answer
        return answer

    @property
    def kinds(self) -> list[str]:
        return [write.kind for write in self.sent]


async def _queue(store: OfflineStore, *kinds: str, telegram_id: int = TID) -> list[QueuedWrite]:
    return [
        await store.enqueue(telegram_id, kind, "POST", f"/api/v1/{kind}", json_body={"n": i}, description=kind)
        for i, kind in enumerate(kinds)
    ]


# --- read cache ---------------------------------------------------------------------------------


async def test_cache_round_trip_overwrite_and_fetched_at_from_the_clock(store: OfflineStore, clock: FakeClock) -> None:
    assert await store.recall(TID, "schedule") is None

    await store.remember(TID, "schedule", {"items": [{"topic": "Дроби"}]})
    cached = await store.recall(TID, "schedule")
    assert cached is not None
    assert cached.data == {"items": [{"topic": "Дроби"}]}
    assert cached.fetched_at == clock.now() and cached.fetched_at.tzinfo is not None

    clock.advance(90)
    await store.remember(TID, "schedule", {"items": []})
    cached = await store.recall(TID, "schedule")
    assert cached is not None and cached.data == {"items": []}
    assert cached.fetched_at == datetime(2026, 3, 1, 9, 1, 30, tzinfo=UTC)

    # per user and per view
    assert await store.recall(OTHER_TID, "schedule") is None
    assert await store.recall(TID, "balance") is None
    await store.forget(TID)
    assert await store.recall(TID, "schedule") is None


# --- the queue ----------------------------------------------------------------------------------


async def test_pending_is_oldest_first_with_its_own_keys(store: OfflineStore) -> None:
    queued = await _queue(store, "a", "b", "c")  # the same clock time: order must not depend on it
    pending = await store.pending()
    assert [w.id for w in pending] == [w.id for w in queued]
    assert len({w.idempotency_key for w in pending}) == 3
    assert pending[1].json_body == {"n": 1} and pending[1].method == "POST" and pending[1].description == "b"
    assert await store.pending(OTHER_TID) == []


async def test_mark_done_mark_failed_and_attempted(store: OfflineStore) -> None:
    first, second = await _queue(store, "a", "b")
    assert await store.attempted(first.id) == 1
    assert await store.attempted(first.id) == 2
    assert await store.mark_done(first.id, 201, {"id": "x"})
    assert not await store.mark_done(first.id, 201, {"id": "x"})  # already settled
    assert await store.mark_failed(second.id, 409, "already completed")
    assert await store.pending() == []
    done, failed = await store.get(first.id), await store.get(second.id)
    assert done is not None and (done.status, done.answer, done.attempts) == (DONE, {"id": "x"}, 2)
    assert failed is not None and (failed.status, failed.answer_status, failed.reason) == (
        REJECTED,
        409,
        "already completed",
    )


async def test_json_body_and_multipart_do_not_mix(store: OfflineStore) -> None:
    with pytest.raises(ValueError):
        await store.enqueue(TID, "x", "POST", "/x", json_body={}, form={"a": "b"}, description="x")


async def test_replay_sends_in_order_and_reports_each(store: OfflineStore) -> None:
    await _queue(store, "a", "b", "c")
    server, reported = FakeServer(), []

    async def on_result(write: QueuedWrite, outcome: str) -> None:
        reported.append((write.kind, outcome))

    results = await replay(store, server.send, on_result=on_result)

    assert server.kinds == ["a", "b", "c"]
    assert [(w.kind, outcome) for w, outcome in results] == [("a", DONE), ("b", DONE), ("c", DONE)]
    assert reported == [("a", DONE), ("b", DONE), ("c", DONE)]
    assert results[0][0].answer == {"id": "srv-0", "kind": "a"}
    assert await store.pending() == []


async def test_a_replay_after_a_crash_resends_with_the_same_key(store: OfflineStore) -> None:
    (write,) = await _queue(store, "homework.submit")
    server = FakeServer()

    class Crash(BaseException):
        """The process dies after the server answered, before the answer is recorded."""

    async def send_then_crash(queued: QueuedWrite) -> tuple[int, Any]:
        await server.send(queued)
        raise Crash

    with pytest.raises(Crash):
        await replay(store, send_then_crash)
    assert [w.id for w in await store.pending()] == [write.id]

    results = await replay(store, server.send)

    assert [w.idempotency_key for w in server.sent] == [write.idempotency_key] * 2
    assert results[0][1] == DONE and results[0][0].answer == server.first_answer[write.idempotency_key][1]
    assert len(server.first_answer) == 1  # one effect


async def test_a_lease_left_by_a_dead_process_expires_and_the_same_key_is_sent(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "offline.sqlite3"
    dying = OfflineStore(path, clock, lease_seconds=60)
    await dying.open()
    (write,) = await _queue(dying, "lesson.complete")
    server, in_flight, never = FakeServer(), asyncio.Event(), asyncio.Event()

    async def hang(queued: QueuedWrite) -> tuple[int, Any]:
        answer = await server.send(queued)  # the server has it ...
        in_flight.set()
        await never.wait()  # ... and the process never hears back
        return answer

    stuck = asyncio.create_task(replay(dying, hang))
    await in_flight.wait()

    restarted = OfflineStore(path, clock, lease_seconds=60)  # the bot restarts on the same file
    await restarted.open()
    assert await replay(restarted, server.send) == []  # still leased: not sent twice at once
    assert len(server.sent) == 1

    clock.advance(61)
    results = await replay(restarted, server.send)
    assert [(w.id, outcome) for w, outcome in results] == [(write.id, DONE)]
    assert [w.idempotency_key for w in server.sent] == [write.idempotency_key] * 2

    stuck.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stuck
    stored = await restarted.get(write.id)
    assert stored is not None and stored.status == DONE and stored.attempts == 2


@pytest.mark.parametrize("failure", [503, 500, 408, 429, ConnectionError("refused")], ids=str)
async def test_replay_stops_at_the_first_unavailable_and_keeps_the_order(
    store: OfflineStore, failure: int | Exception
) -> None:
    queued = await _queue(store, "a", "b", "c")
    answer = failure if isinstance(failure, Exception) else (failure, {"error": {"message": "down"}})
    server = FakeServer({"b": [answer]})

    results = await replay(store, server.send)

    assert [(w.kind, outcome) for w, outcome in results] == [("a", DONE), ("b", UNAVAILABLE)]
    assert server.kinds == ["a", "b"]
    assert [w.id for w in await store.pending()] == [queued[1].id, queued[2].id]

    results = await replay(store, server.send)  # back up: the rest goes, in order, with the same keys
    assert [(w.kind, outcome) for w, outcome in results] == [("b", DONE), ("c", DONE)]
    assert server.sent[1].idempotency_key == server.sent[2].idempotency_key == queued[1].idempotency_key
    assert await store.pending() == []


async def test_rejected_writes_are_recorded_reported_and_never_retried(store: OfflineStore) -> None:
    await _queue(store, "lesson.complete", "topup")
    conflict = (409, {"error": {"code": "conflict", "message": "The lesson is already completed"}})
    server, reported = FakeServer({"lesson.complete": [conflict]}), []

    async def on_result(write: QueuedWrite, outcome: str) -> None:
        reported.append((write.kind, outcome, write.reason))

    results = await replay(store, server.send, on_result=on_result)

    assert [(w.kind, outcome) for w, outcome in results] == [("lesson.complete", REJECTED), ("topup", DONE)]
    assert reported[0] == ("lesson.complete", REJECTED, "The lesson is already completed")
    assert results[0][0].answer_status == 409
    assert await replay(store, server.send) == []
    assert server.kinds == ["lesson.complete", "topup"]


async def test_a_dependent_write_gets_the_earlier_answer_substituted(store: OfflineStore) -> None:
    photo = ("work.jpg", b"\xff\xd8 jpeg bytes", "image/jpeg")
    upload = await store.enqueue(
        TID,
        "material.upload",
        "POST",
        "/api/v1/materials",
        files={"file": photo},
        form={"kind": "homework"},
        description="photo of the homework",
    )
    submit = await store.enqueue(
        TID,
        "homework.submit",
        "POST",
        "/api/v1/homework/hw-1/submissions",
        json_body={
            "text": "$ref: typed by the user",
            "material_ids": [ref(upload)],
            "meta": {"sha": ref(upload, "sha256")},
        },
        depends_on=upload.id,
        description="homework submission",
    )
    server = FakeServer({"material.upload": [(201, {"id": "mat-42", "sha256": "abc"})]})

    results = await replay(store, server.send)

    assert [outcome for _, outcome in results] == [DONE, DONE]
    sent_upload, sent_submit = server.sent
    assert sent_upload.files == {"file": photo} and sent_upload.form == {"kind": "homework"}
    assert sent_submit.json_body == {
        "text": "$ref: typed by the user",
        "material_ids": ["mat-42"],
        "meta": {"sha": "abc"},
    }
    assert sent_submit.idempotency_key == submit.idempotency_key
    stored = await store.get(submit.id)
    assert stored is not None and stored.json_body["material_ids"] == [ref(upload)]  # the queue keeps the placeholder


async def test_a_placeholder_in_the_path_and_an_undeclared_one_stays_literal(store: OfflineStore) -> None:
    lesson = await store.enqueue(TID, "lesson.create", "POST", "/api/v1/lessons", json_body={}, description="lesson")
    other = await store.enqueue(TID, "x", "POST", "/api/v1/x", json_body={}, description="x")
    await store.enqueue(
        TID,
        "lesson.complete",
        "POST",
        f"/api/v1/lessons/{ref(lesson)}/complete",
        json_body={"grade": 5, "note": ref(other)},  # not declared: left as text
        depends_on=[lesson.id],
        description="complete",
    )
    server = FakeServer({"lesson.create": [(201, {"id": "les 1"})]})

    await replay(store, server.send)

    assert server.sent[-1].path == "/api/v1/lessons/les%201/complete"
    assert server.sent[-1].json_body == {"grade": 5, "note": ref(other)}


async def test_a_write_whose_dependency_was_rejected_is_rejected_unsent(store: OfflineStore) -> None:
    upload = await store.enqueue(
        TID, "material.upload", "POST", "/api/v1/materials", files={"file": ("a.exe", b"MZ", "x/y")}, description="file"
    )
    submit = await store.enqueue(
        TID,
        "homework.submit",
        "POST",
        "/api/v1/homework/hw-1/submissions",
        json_body={"material_ids": [ref(upload)]},
        depends_on=upload.id,
        description="submission",
    )
    server = FakeServer({"material.upload": [(413, {"error": {"message": "File too large"}})]})

    results = await replay(store, server.send)

    assert [(w.id, outcome) for w, outcome in results] == [(upload.id, REJECTED), (submit.id, REJECTED)]
    assert server.kinds == ["material.upload"]
    assert results[1][0].reason is not None and "file" in results[1][0].reason


async def test_a_missing_field_in_the_dependency_answer_rejects_the_dependent(store: OfflineStore) -> None:
    upload = await store.enqueue(TID, "u", "POST", "/u", json_body={}, description="u")
    await store.enqueue(
        TID, "s", "POST", "/s", json_body={"m": ref(upload, "items.0.id")}, depends_on=upload.id, description="s"
    )
    server = FakeServer({"u": [(201, {"items": []})]})

    results = await replay(store, server.send)

    assert [outcome for _, outcome in results] == [DONE, REJECTED]
    assert server.kinds == ["u"]


async def test_depends_on_must_be_a_queued_write_of_the_same_user(store: OfflineStore) -> None:
    (theirs,) = await _queue(store, "a", telegram_id=OTHER_TID)
    with pytest.raises(ValueError):
        await store.enqueue(TID, "b", "POST", "/b", json_body={}, depends_on=theirs.id, description="b")
    with pytest.raises(ValueError):
        await store.enqueue(TID, "b", "POST", "/b", json_body={}, depends_on="nope", description="b")
    assert [w.id for w in await store.pending()] == [theirs.id]


async def test_two_concurrent_replays_send_each_write_once(store: OfflineStore) -> None:
    queued = await _queue(store, *"abcdefghij")
    server = FakeServer()

    runs = await asyncio.gather(*(replay(store, server.send) for _ in range(4)))

    assert sorted(w.id for run in runs for w, _ in run) == sorted(w.id for w in queued)
    assert [w.idempotency_key for w in server.sent] == [w.idempotency_key for w in queued]  # once each, in order
    assert await store.pending() == []


async def test_a_replay_waits_behind_a_write_in_flight(store: OfflineStore) -> None:
    await _queue(store, "a", "b")
    server, in_flight, go_on = FakeServer(), asyncio.Event(), asyncio.Event()

    async def slow(write: QueuedWrite) -> tuple[int, Any]:
        if write.kind == "a":
            in_flight.set()
            await go_on.wait()
        return await server.send(write)

    running = asyncio.create_task(replay(store, slow))
    await in_flight.wait()
    assert await replay(store, server.send) == []  # neither "a" again nor "b" ahead of it
    go_on.set()
    results = await running

    assert [(w.kind, outcome) for w, outcome in results] == [("a", DONE), ("b", DONE)]
    assert server.kinds == ["a", "b"]


async def test_replay_for_one_user_leaves_the_others(store: OfflineStore) -> None:
    await _queue(store, "theirs", telegram_id=OTHER_TID)
    await _queue(store, "mine")
    server = FakeServer()

    await replay(store, server.send, telegram_id=TID)

    assert server.kinds == ["mine"]
    assert [w.kind for w in await store.pending()] == ["theirs"]


async def test_queue_and_cache_survive_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "offline.sqlite3"
    before = OfflineStore(path, clock)
    await before.open()
    await before.remember(TID, "balance", {"balance": 150000, "currency": "RUB"})
    written = await before.enqueue(
        TID,
        "material.upload",
        "POST",
        "/api/v1/materials",
        files={"file": ("конспект.pdf", b"%PDF-1.7 \x00\x01", "application/pdf")},
        form={"title": "Конспект"},
        description="конспект",
    )
    before.close()
    with pytest.raises(RuntimeError):
        await before.pending()

    after = OfflineStore(path, clock)
    await after.open()  # creating the tables again is harmless
    (pending,) = await after.pending()
    assert pending == written
    cached = await after.recall(TID, "balance")
    assert cached is not None and cached.data == {"balance": 150000, "currency": "RUB"}


async def test_the_file_uses_wal(store: OfflineStore) -> None:
    import sqlite3

    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
