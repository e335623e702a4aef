"""Writes that survive the fleet being down: ``queue_or_send`` and the background replay.

``queue_or_send`` puts the write in the offline queue first (its Idempotency-Key is fixed there) and then
replays the user's queue at once, in order: when the fleet answers, the write is sent now with that key
and its answer returned; when it does not, the write stays queued, the user is told "saved, will send
when back", and the replay loop sends it later with the same key, so it has one effect however many times
it is attempted. A user's older queued writes go first (a write never overtakes one it may depend on).

The replay loop runs at start-up and every ``replay_interval_seconds``, each write as its own user (their
session from SessionStore), and tells them "sent" or why it was refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from telegram.ext import Application

from services.telegram_bot import context as bot_context
from services.telegram_bot.api import ApiError, NotSignedIn, Unavailable
from services.telegram_bot.context import Bot
from services.telegram_bot.handlers.common import Caller
from services.telegram_bot.health import MESSAGES, OFFLINE_WRITES
from services.telegram_bot.i18n import t
from services.telegram_bot.offline import DONE, REJECTED, OfflineStore, QueuedWrite, replay

log = logging.getLogger(__name__)

LOOP_KEY = "offline_replay"


class Queued(Exception):
    """The write is saved offline and the user told so; nothing more to do now."""


def _sender(bot: Bot) -> Any:
    async def send(write: QueuedWrite) -> tuple[int, Any]:
        session = await bot.sessions.get(write.telegram_id)
        if session is None:
            return 401, {"error": {"message": t("ru", "need_start")}}
        try:
            answer = await bot.api.call(
                session,
                write.method,
                write.path,
                json_body=write.json_body,
                files=write.files,
                data=write.form,
                idempotency_key=write.idempotency_key,
            )
        except ApiError as refused:
            return refused.status, {"error": {"code": refused.code, "message": refused.message}}
        except NotSignedIn as exc:  # counts as "no answer": the write stays queued
            raise Unavailable(str(exc)) from exc
        return 200, answer

    return send


async def queue_or_send(
    who: Caller,
    kind: str,
    description: str,
    method: str,
    path: str,
    *,
    json_body: dict[str, Any] | None = None,
    files: dict[str, tuple[str, bytes, str]] | None = None,
    form: dict[str, str] | None = None,
) -> Any:
    """Send a write now and return its answer; while the fleet is down, queue it and tell the user
    (raises :class:`Queued`: the caller's screen stops there). A refusal raises ApiError as a direct call."""
    store = who.bot.offline
    if store is None:
        return await who.bot.api.call(
            who.user, method, path, json_body=json_body, files=files, data=form, idempotency_key=who.bot.api.new_key()
        )
    write = await store.enqueue(
        who.telegram_id, kind, method, path, json_body=json_body, files=files, form=form, description=description
    )

    async def older(done: QueuedWrite, outcome: str) -> None:
        if done.id != write.id:  # the user's earlier queued writes: told as the loop would
            await _tell(who.bot, done, outcome)

    await replay(store, _sender(who.bot), on_result=older, telegram_id=who.telegram_id)
    recorded = await store.get(write.id)
    assert recorded is not None
    if recorded.status == DONE:
        return recorded.answer
    if recorded.status == REJECTED:
        error = (recorded.answer or {}).get("error", {}) if isinstance(recorded.answer, dict) else {}
        raise ApiError(recorded.answer_status or 400, error.get("code", "rejected"), recorded.reason or "", None)
    OFFLINE_WRITES.labels("queued").inc()
    await _say(who.bot, who.chat_id, who.t("queued_offline", what=description))
    raise Queued(description)


async def _tell(bot: Bot, write: QueuedWrite, outcome: str) -> None:
    if outcome not in (DONE, REJECTED):
        return
    OFFLINE_WRITES.labels(outcome).inc()
    session = await bot.sessions.get(write.telegram_id)
    lang = session.language if session else "ru"
    if outcome == DONE:
        text = t(lang, "replayed_done", what=write.description)
    else:
        text = t(lang, "replayed_rejected", what=write.description, reason=write.reason or "")
    await _say(bot, write.telegram_id, text)


async def _say(bot: Bot, chat_id: int, text: str) -> None:
    sender = bot.telegram
    if sender is None:
        return
    try:
        await sender.send_message(chat_id, text)
        MESSAGES.labels("sent").inc()
    except Exception:  # the write is settled or queued; a lost notice must not stop the queue
        MESSAGES.labels("failed").inc()
        log.exception("could not tell the user about an offline write")


async def replay_all(app: Application) -> None:  # type: ignore[type-arg]
    bot = bot_context.of(app)
    if bot.offline is None:
        return

    async def tell(write: QueuedWrite, outcome: str) -> None:
        await _tell(bot, write, outcome)

    await replay(bot.offline, _sender(bot), on_result=tell)


async def _loop(app: Application, interval: float) -> None:  # type: ignore[type-arg]
    while True:
        try:
            await replay_all(app)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("offline replay failed")
        await asyncio.sleep(interval)


async def start(app: Application) -> None:  # type: ignore[type-arg]
    """Open the offline store and start replaying (first pass at once)."""
    bot = bot_context.of(app)
    store = OfflineStore(bot.settings.offline_db_path, bot.clock)
    await store.open()
    bot.offline = store
    bot.telegram = app.bot
    app.bot_data[LOOP_KEY] = asyncio.create_task(
        _loop(app, bot.settings.replay_interval_seconds), name="offline-replay"
    )


async def stop(app: Application) -> None:  # type: ignore[type-arg]
    task: asyncio.Task[None] | None = app.bot_data.pop(LOOP_KEY, None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    bot = bot_context.of(app)
    if bot.offline is not None:
        bot.offline.close()
        bot.offline = None
