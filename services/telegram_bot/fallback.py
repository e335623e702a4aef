"""Writes that survive the fleet being down: ``queue_or_send`` and the background replay.

``queue_or_send`` puts the write in the offline queue first (its Idempotency-Key is fixed there) and then
replays the user's queue at once, in order: when the fleet answers, the write is sent now with that key
and its answer returned; when it does not, the write stays queued, the user is told "saved, will send
when back", and the replay loop sends it later with the same key, so it has one effect however many times
it is attempted. A user's older queued writes go first (a write never overtakes one it may depend on).
``Outbox`` does the same for the several writes of one action (upload a file, then submit with its id).

The replay loop runs at start-up and every ``replay_interval_seconds``, each write as its own user (their
session from SessionStore), and tells them "sent" or why it was refused.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from telegram.ext import Application

from services.telegram_bot import context as bot_context
from services.telegram_bot.api import ApiError, NotSignedIn, Unavailable
from services.telegram_bot.context import Bot
from services.telegram_bot.handlers.common import Caller
from services.telegram_bot.health import MESSAGES, OFFLINE_WRITES
from services.telegram_bot.i18n import t
from services.telegram_bot.offline import DONE, REJECTED, OfflineStore, QueuedWrite, replay
from shared.scheduling import start_periodic, stop_periodic

log = logging.getLogger(__name__)

LOOP_KEY = "offline_replay"
# writes that only feed a later write of the same action (its answer is the later one's input)
QUIET_WHEN_DONE = frozenset({"homework.file"})


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


class Outbox:
    """The writes of one user action (e.g. upload a file, then submit homework with its id), queued
    together with :meth:`add` (a later one may use an earlier one's answer: ``depends_on`` + ``ref``) and
    then sent at once with :meth:`send`; while the fleet is down they stay queued and the user is told."""

    def __init__(self, who: Caller) -> None:
        if who.bot.offline is None:
            raise RuntimeError("the offline store is not open")
        self.who = who
        self.store: OfflineStore = who.bot.offline
        self.writes: list[QueuedWrite] = []

    async def add(
        self,
        kind: str,
        description: str,
        method: str,
        path: str,
        *,
        json_body: dict[str, Any] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        form: dict[str, str] | None = None,
        key: str | None = None,
        depends_on: Sequence[QueuedWrite] = (),
    ) -> QueuedWrite:
        """Queue one write (``key``: its Idempotency-Key if the caller already has one)."""
        write = await self.store.enqueue(
            self.who.telegram_id,
            kind,
            method,
            path,
            json_body=json_body,
            files=files,
            form=form,
            description=description,
            depends_on=[dep.id for dep in depends_on],
            idempotency_key=key,
        )
        self.writes.append(write)
        return write

    async def send(self) -> list[Any]:
        """Replay the user's queue now (older writes first) and return each added write's answer.

        Raises :class:`Queued` (the user told "saved, will send") while any of them is still pending, and
        ApiError for the first one refused (one refused only because its dependency was refused is not the cause)."""
        who, mine = self.who, {write.id for write in self.writes}

        async def older(done: QueuedWrite, outcome: str) -> None:
            if done.id not in mine:  # the user's earlier queued writes: told as the loop would
                await _tell(who.bot, done, outcome)

        await replay(self.store, _sender(who.bot), on_result=older, telegram_id=who.telegram_id)
        recorded = [await self.store.get(write.id) for write in self.writes]
        refused = [w for w in recorded if w is not None and w.status == REJECTED]
        if refused:
            cause = next((w for w in refused if w.answer_status is not None), refused[0])
            error = (cause.answer or {}).get("error", {}) if isinstance(cause.answer, dict) else {}
            raise ApiError(cause.answer_status or 400, error.get("code", "rejected"), cause.reason or "", None)
        if all(w is not None and w.status == DONE for w in recorded):
            return [w.answer for w in recorded if w is not None]
        OFFLINE_WRITES.labels("queued").inc()
        description = self.writes[-1].description  # the action's own write (the last; earlier ones feed it)
        await _say(who.bot, who.chat_id, who.t("queued_offline", what=description))
        raise Queued(description)


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
    key: str | None = None,
) -> Any:
    """Send a write now and return its answer; while the fleet is down, queue it and tell the user
    (raises :class:`Queued`: the caller's screen stops there). A refusal raises ApiError as a direct call.
    ``key``: the write's Idempotency-Key when the caller already has one (a flow keeps it)."""
    if who.bot.offline is None:  # before start-up: no queue, a direct call
        return await who.bot.api.call(
            who.user,
            method,
            path,
            json_body=json_body,
            files=files,
            data=form,
            idempotency_key=key or who.bot.api.new_key(),
        )
    outbox = Outbox(who)
    await outbox.add(kind, description, method, path, json_body=json_body, files=files, form=form, key=key)
    [answer] = await outbox.send()
    return answer


async def _tell(bot: Bot, write: QueuedWrite, outcome: str) -> None:
    if outcome not in (DONE, REJECTED):
        return
    if outcome == DONE and write.kind in QUIET_WHEN_DONE:
        return  # a step of a larger action: the action's own write says "sent"
    if outcome == REJECTED and write.depends_on and write.answer_status is None:
        return  # never sent because what it needed was refused: that refusal was told, with its reason
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


async def start(app: Application) -> None:  # type: ignore[type-arg]
    """Open the offline store and start replaying (first pass at once)."""
    bot = bot_context.of(app)
    store = OfflineStore(bot.settings.offline_db_path, bot.clock)
    await store.open()
    bot.offline = store
    bot.telegram = app.bot
    app.bot_data[LOOP_KEY] = start_periodic(
        "offline-replay", bot.settings.replay_interval_seconds, lambda: replay_all(app)
    )


async def stop(app: Application) -> None:  # type: ignore[type-arg]
    await stop_periodic(app.bot_data.pop(LOOP_KEY, None))
    bot = bot_context.of(app)
    if bot.offline is not None:
        bot.offline.close()
        bot.offline = None
