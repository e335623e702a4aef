"""Notifications: ``notification.requested`` from RabbitMQ → a Telegram message → ``notification.delivered``
or ``notification.failed`` back on the bus for notification-service's delivery log.

The text is rendered here from ``template`` + ``params`` in the recipient's language (``params.language``,
else their session's); the catalogue keys are ``notify_<template>`` (``_parent`` for a parent's copy) in
messages_notify.py, and every template notification-service emits has one (a test checks). Buttons come
from the event (their ``label`` is a catalogue key); a student's lesson reminder without any gets the RSVP
pair ``rsvp:yes:<lesson>`` / ``rsvp:no:<lesson>`` (handlers/rsvp.py).

Delivering once, without a database
-----------------------------------
The bot has no inbox table, so duplicates are caught in Redis: after a successful send the message's
``dedup_key`` (else its ``notification_id``) is marked with ``SET NX`` and a TTL, holding the chat and the
Telegram message id. A delivery that finds the mark is not sent again; its ``notification.delivered`` is
published again (notification-service treats it idempotently) and the message acked. The mark is set only
after the send, never before: a bot that dies between ``sendMessage`` and the mark gets the message again
and sends it a second time. That is the one accepted duplicate: marking first would instead lose the
message for good on such a crash.

Failures
--------
- Telegram 429: PTB's ``AIORateLimiter`` (app.py) waits ``retry_after`` and retries; if it still gets
  ``RetryAfter``, the consumer waits it out too and gives the message back to the queue (requeue).
- The user blocked the bot (``Forbidden``): ``SessionStore.mark_blocked``, ``notification.failed`` reason
  ``blocked`` (permanent), acked, never retried; later notifications to them are skipped the same way until
  they press /start again (which clears the mark).
- No chat known for the user, an unknown template, a bad request: ``notification.failed`` (permanent), acked.
- Network errors: retried through the queue; on the last attempt ``notification.failed`` and dead-lettered.

The consumer calls the Bot API itself rather than going through PTB's update queue: the message can be
acked only once its send succeeded, and a 429 wait must not hold up users' updates.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError
from telegram.ext import Application

from services.telegram_bot import context as bot_context
from services.telegram_bot.handlers.common import money
from services.telegram_bot.health import NOTIFICATIONS
from services.telegram_bot.i18n import DEFAULT_LANGUAGE, LANGUAGES, has, t
from shared.events.bus import EventBus, IncomingEvent, PublishError, RabbitMQBus, Subscription
from shared.events.catalogue import (
    NotificationButton,
    NotificationDelivered,
    NotificationFailed,
    NotificationRequested,
    payload_as,
)
from shared.events.envelope import Envelope

log = logging.getLogger(__name__)

SERVICE = "telegram-bot"
EVENT_TYPES = ("notification.requested",)
DEDUP_TTL_SECONDS = 30 * 24 * 3600  # longer than any redelivery or deferral notification-service makes
BUS_KEY = "notification_bus"


class UnknownTemplate(Exception):
    pass


# --- rendering ---------------------------------------------------------------------------------


def _time(params: dict[str, Any], name: str) -> str:
    """``dd.mm HH:MM`` of ``<name>_local`` (the recipient's zone, from notification-service); else the UTC value."""
    raw = params.get(f"{name}_local") or params.get(name)
    if not raw:
        return "—"
    try:
        return datetime.fromisoformat(str(raw)).strftime("%d.%m %H:%M")
    except ValueError:
        return str(raw)


def _date(raw: Any) -> str:
    try:
        return date.fromisoformat(str(raw)).strftime("%d.%m.%Y")
    except ValueError:
        return str(raw)


def _duration(lang: str, minutes: Any) -> str:
    minutes = int(minutes or 0)
    if minutes >= 60 and minutes % 60 == 0:
        return t(lang, "notify_hours", n=minutes // 60)
    return t(lang, "notify_minutes", n=minutes)


def _word(lang: str, prefix: str, value: Any) -> str:
    key = f"{prefix}_{value}"
    return t(lang, key) if value and has(key) else (str(value) if value else t(lang, "notify_none"))


def _lesson(lang: str, p: dict[str, Any]) -> dict[str, Any]:
    topic = p.get("topic")
    return {"subject": p.get("subject") or "", "topic": f" ({topic})" if topic else "", "time": _time(p, "starts_at")}


def _name(lang: str, p: dict[str, Any]) -> str:
    return str(p.get("student_name") or t(lang, "notify_none"))


def render(template: str, params: dict[str, Any], lang: str) -> str:
    """The text of one notification in ``lang``; UnknownTemplate if the catalogue has none."""
    p = params
    key = f"notify_{template}"
    if p.get("for_parent") and has(f"{key}_parent"):
        key = f"{key}_parent"
    elif p.get("for_tutor") and has(f"{key}_tutor"):
        key = f"{key}_tutor"
    if not has(key):
        raise UnknownTemplate(template)
    values: dict[str, Any]
    if template == "lesson_reminder":
        values = _lesson(lang, p) | {"left": _duration(lang, p.get("minutes_before"))}
    elif template == "lesson_scheduled":
        values = _lesson(lang, p)
    elif template == "lesson_rescheduled":
        values = _lesson(lang, p) | {"previous": _time(p, "previous_starts_at")}
    elif template == "lesson_cancelled":
        role = p.get("cancelled_by_role")
        by = t(lang, f"notify_by_{role}") if role and has(f"notify_by_{role}") else ""
        reason = t(lang, "notify_reason", reason=p["reason"]) if p.get("reason") else ""
        charge = t(lang, "notify_chargeable") if p.get("chargeable") else ""
        values = _lesson(lang, p) | {"by": by, "reason": reason, "charge": charge, "name": _name(lang, p)}
    elif template == "lesson_report":
        homework = ", ".join(f"«{h.get('title')}» ({_time(h, 'due_at')})" for h in p.get("homework") or [])
        comment = f" {p['mastery_comment']}" if p.get("mastery_comment") else ""
        values = _lesson(lang, p) | {
            "name": _name(lang, p),
            "attendance": _word(lang, "notify_attendance", p.get("attendance")),
            "grade": p.get("grade") or t(lang, "notify_none"),
            "mastery": _word(lang, "notify_mastery", p.get("mastery")),
            "comment": comment,
            "homework": homework or t(lang, "notify_none"),
            "open": p.get("open_homework") or 0,
        }
    elif template in ("homework_assigned", "homework_due_tomorrow"):
        values = {"title": p.get("title") or "", "due": _time(p, "due_at")}
    elif template == "homework_submitted":
        values = {
            "title": p.get("title") or "",
            "name": _name(lang, p),
            "late": t(lang, "notify_late") if p.get("late") else "",
        }
    elif template == "homework_graded":
        values = {"title": p.get("title") or "", "grade": p.get("grade")}
    elif template == "payment_received":
        currency = p.get("currency") or "RUB"
        values = {
            "amount": money(int(p.get("amount") or 0), currency),
            "balance": money(int(p.get("balance_after") or 0), currency),
            "lessons": p.get("lessons_covered") or 0,
        }
    elif template == "balance_low":
        values = {"name": _name(lang, p), "balance": money(int(p.get("balance") or 0), p.get("currency") or "RUB")}
    elif template == "level_up":
        values = {"level": p.get("level"), "xp": p.get("total_xp")}
    elif template == "achievement_unlocked":
        code = p.get("code")
        title = t(lang, f"ach_{code}") if has(f"ach_{code}") else str(code)
        values = {"name": _name(lang, p), "title": title, "rarity": _word(lang, "rarity", p.get("rarity"))}
    elif template in ("weekly_summary", "monthly_report"):
        hw = p.get("homework") or {}
        payments = ", ".join(
            money(int(x.get("amount") or 0), x.get("currency") or "RUB") for x in p.get("payments") or []
        )
        body = t(
            lang,
            "notify_digest_body",
            attended=p.get("lessons_attended") or 0,
            missed=p.get("lessons_missed") or 0,
            grade=p.get("average_lesson_grade") or t(lang, "notify_none"),
            assigned=hw.get("assigned", 0),
            submitted=hw.get("submitted", 0),
            graded=hw.get("graded", 0),
            open=hw.get("open", 0),
            payments=payments or t(lang, "notify_none"),
        )
        values = {
            "name": _name(lang, p),
            "start": _date(p.get("period_start")),
            "end": _date(p.get("period_end")),
            "body": body,
        }
    elif template in ("alert_firing", "alert_resolved"):
        values = {k: p.get(k) or "" for k in ("alertname", "severity", "service", "summary", "description")}
        if template == "alert_firing" and p.get("runbook"):  # the alert rule's runbook annotation
            return t(lang, key, **values) + "\n" + t(lang, "notify_alert_runbook", runbook=p["runbook"])
    else:  # a text without placeholders
        values = {}
    return t(lang, key, **values)


def buttons_of(event: NotificationRequested, lang: str) -> InlineKeyboardMarkup | None:
    buttons = list(event.buttons)
    p = event.params
    if not buttons and event.template == "lesson_reminder" and not p.get("for_parent") and p.get("lesson_id"):
        lesson = p["lesson_id"]
        buttons = [
            NotificationButton(label="btn_rsvp_yes", callback_data=f"rsvp:yes:{lesson}"),
            NotificationButton(label="btn_rsvp_no", callback_data=f"rsvp:no:{lesson}"),
        ]
    row = []
    for button in buttons:
        label = t(lang, button.label) if has(button.label) else button.label
        if button.url:
            row.append(InlineKeyboardButton(label, url=button.url))
        elif button.callback_data:
            row.append(InlineKeyboardButton(label, callback_data=button.callback_data))
    return InlineKeyboardMarkup([row]) if row else None


# --- delivering --------------------------------------------------------------------------------


@dataclass
class Outcome:
    delivered: bool
    chat_id: int | None = None
    message_id: int | None = None
    reason: str = ""
    permanent: bool = True


class Notifier:
    """Consumes ``notification.requested`` and answers each with delivered/failed."""

    def __init__(self, app: Application, bus: EventBus, redis: Redis) -> None:  # type: ignore[type-arg]
        self.app = app
        self.bus = bus
        self.redis = redis
        self.bot = bot_context.of(app)
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        await self.bus.start()
        self._subscription = await self.bus.consume(SERVICE, EVENT_TYPES, self.handle)

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.cancel()
            self._subscription = None
        await self.bus.close()

    async def handle(self, message: IncomingEvent) -> None:
        try:
            envelope = Envelope.from_json(message.body)
            event = payload_as(envelope, NotificationRequested)
        except (ValueError, ValidationError) as exc:
            log.error("unreadable notification dead-lettered", extra={"error": str(exc)})
            await message.dead_letter()
            return
        mark = f"bot:notified:{event.dedup_key or event.notification_id}"
        seen = await self.redis.get(mark)
        if seen is not None:  # sent before: only the answer may have been lost
            earlier = json.loads(seen)
            outcome = Outcome(True, earlier["chat_id"], earlier.get("message_id"))
        else:
            try:
                outcome = await self._deliver(event)
            except RetryAfter as exc:
                # PTB's rate limiter already retried: wait it out here too, then let the broker redeliver
                await asyncio.sleep(_seconds(exc.retry_after))
                await self._give_back(message, envelope, event, "telegram rate limit")
                return
            except TelegramError as exc:  # network trouble, timeouts, Telegram's 5xx
                log.warning(
                    "notification not sent", extra={"notification_id": str(event.notification_id), "error": repr(exc)}
                )
                await self._give_back(message, envelope, event, f"telegram: {exc}")
                return
            if outcome.delivered:
                value = json.dumps({"chat_id": outcome.chat_id, "message_id": outcome.message_id})
                await self.redis.set(mark, value, nx=True, ex=DEDUP_TTL_SECONDS)
        try:
            await self._answer(envelope, event, outcome)
        except PublishError as exc:  # the mark stops a resend; the redelivery publishes the answer again
            log.warning("notification answer not published", extra={"error": repr(exc)})
            await message.retry()
            return
        await message.ack()

    async def _deliver(self, event: NotificationRequested) -> Outcome:
        user_id = str(event.user_id)
        chat_id = event.chat_id or await self.bot.sessions.chat_of(user_id)
        if chat_id is None:
            NOTIFICATIONS.labels("failed").inc()
            return Outcome(False, reason="no telegram chat for the user")
        if await self.bot.sessions.is_blocked(chat_id):
            NOTIFICATIONS.labels("failed").inc()
            return Outcome(False, chat_id, reason="blocked")
        lang = event.params.get("language")
        if lang not in LANGUAGES:
            session = await self.bot.sessions.get(chat_id)
            lang = session.language if session and session.language in LANGUAGES else DEFAULT_LANGUAGE
        try:
            text = render(event.template, event.params, lang)
        except UnknownTemplate:
            log.error("notification with an unknown template", extra={"template": event.template})
            NOTIFICATIONS.labels("failed").inc()
            return Outcome(False, chat_id, reason=f"unknown template {event.template}")
        try:
            sent = await self.app.bot.send_message(chat_id, text, reply_markup=buttons_of(event, lang))
        except Forbidden:
            await self.bot.sessions.mark_blocked(chat_id)
            NOTIFICATIONS.labels("failed").inc()
            return Outcome(False, chat_id, reason="blocked")
        except BadRequest as exc:  # chat not found, text refused: sending again will not help
            NOTIFICATIONS.labels("failed").inc()
            return Outcome(False, chat_id, reason=f"telegram: {exc.message}")
        NOTIFICATIONS.labels("delivered").inc()
        return Outcome(True, chat_id, sent.message_id)

    async def _give_back(
        self, message: IncomingEvent, envelope: Envelope, event: NotificationRequested, why: str
    ) -> None:
        if not message.final_attempt:
            await message.retry()
            return
        NOTIFICATIONS.labels("failed").inc()
        try:
            await self._answer(envelope, event, Outcome(False, event.chat_id, reason=why, permanent=False))
        except PublishError:
            log.warning("notification.failed not published", extra={"notification_id": str(event.notification_id)})
        await message.dead_letter()

    async def _answer(self, envelope: Envelope, event: NotificationRequested, outcome: Outcome) -> None:
        payload: NotificationDelivered | NotificationFailed
        if outcome.delivered:
            assert outcome.chat_id is not None
            payload = NotificationDelivered(
                notification_id=event.notification_id,
                user_id=event.user_id,
                chat_id=outcome.chat_id,
                telegram_message_id=outcome.message_id,
                dedup_key=event.dedup_key,
            )
        else:
            payload = NotificationFailed(
                notification_id=event.notification_id,
                user_id=event.user_id,
                chat_id=outcome.chat_id,
                reason=outcome.reason,
                permanent=outcome.permanent,
                dedup_key=event.dedup_key,
            )
        await self.bus.publish(
            Envelope.wrap(
                payload, producer=SERVICE, correlation_id=envelope.correlation_id, causation_id=str(envelope.event_id)
            )
        )


def _seconds(retry_after: Any) -> float:
    return float(retry_after.total_seconds() if hasattr(retry_after, "total_seconds") else retry_after)


# --- wiring (app.py's post_init / post_shutdown) -----------------------------------------------


async def start(app: Application, bus: EventBus | None = None) -> Notifier:  # type: ignore[type-arg]
    settings = bot_context.of(app).settings
    bus = bus or RabbitMQBus(
        settings.rabbitmq_url,
        service=SERVICE,
        exchange=settings.events_exchange,
        delivery_limit=settings.notification_max_attempts,
        publish_timeout=settings.publish_timeout_seconds,
    )
    notifier = Notifier(app, bus, app.bot_data["redis"])
    await notifier.start()
    app.bot_data[BUS_KEY] = notifier
    return notifier


async def stop(app: Application) -> None:  # type: ignore[type-arg]
    notifier: Notifier | None = app.bot_data.pop(BUS_KEY, None)
    if notifier is not None:
        await notifier.stop()
