"""Routing of what the user types, sends or presses inside a multi-step flow or as a reply.

A flow module registers its step handler with ``@flow("name")``; the step handler reads
``conversation.step`` and the input (text, document, photo, or a ``flow:<name>:...`` button) and
either saves the next step or ends the flow. A message that replies to a bot message registered with
``ConversationStore.expect_reply`` goes to the ``@reply("kind")`` handler. Anything else gets a hint.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, MessageHandler, filters

from services.telegram_bot.handlers.common import Caller, Context, answer, caller
from services.telegram_bot.state import Conversation

FlowStep = Callable[[Update, Context, Caller, Conversation], Awaitable[None]]
ReplyHandler = Callable[[Update, Context, Caller, dict[str, Any]], Awaitable[None]]

FLOWS: dict[str, FlowStep] = {}
REPLIES: dict[str, ReplyHandler] = {}


def flow(name: str) -> Callable[[FlowStep], FlowStep]:
    def register(step: FlowStep) -> FlowStep:
        FLOWS[name] = step
        return step

    return register


def reply(kind: str) -> Callable[[ReplyHandler], ReplyHandler]:
    def register(handler: ReplyHandler) -> ReplyHandler:
        REPLIES[kind] = handler
        return handler

    return register


def pressed(update: Update) -> list[str] | None:
    """A ``flow:<name>:<value>...`` button's parts after the flow name, or None for typed input."""
    data = update.callback_query.data if update.callback_query else None
    return data.split(":")[2:] if data else None


async def route(update: Update, context: Context) -> None:
    who = await caller(update, context)
    message = update.effective_message
    if message is not None and message.reply_to_message is not None and update.callback_query is None:
        target = await who.bot.conversations.reply_target(who.chat_id, message.reply_to_message.message_id)
        if target is not None and target["kind"] in REPLIES:
            await REPLIES[target["kind"]](update, context, who, target)
            return
    conversation = await who.bot.conversations.get(who.chat_id)
    if conversation is not None and conversation.flow in FLOWS:
        await FLOWS[conversation.flow](update, context, who, conversation)
        return
    if update.callback_query is not None:  # a button of a flow that has ended or expired
        await answer(update, who.t("flow_expired"))
        return
    await answer(update, who.t("unknown_input" if who.session else "need_start"))


def register(app: Application) -> None:  # type: ignore[type-arg]
    """Last in line: commands and specific buttons are matched before this catch-all."""
    # flow:cancel is start.cancel's (group 0); matching it here too answered "expired" after "cancelled"
    app.add_handler(CallbackQueryHandler(route, pattern=r"^flow:(?!cancel$)"), group=1)
    app.add_handler(MessageHandler(~filters.COMMAND & filters.ChatType.PRIVATE, route), group=1)
