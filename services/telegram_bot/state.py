"""Conversation state in Redis: which multi-step flow a chat is in, at which step, with what answers.

Written at every step (not flushed later), so a bot restart or crash between two steps carries on
where the user was. A flow that is left alone expires (``conversation_ttl_seconds``).

Reply targets: a message the bot sent can ask for an answer by reply (a homework card: reply with
your work; a student's message: the tutor replies to answer). What a reply to it means is kept here
under the message's id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis


@dataclass
class Conversation:
    flow: str
    step: str
    data: dict[str, Any] = field(default_factory=dict)


class ConversationStore:
    def __init__(self, redis: Redis, ttl_seconds: int, prefix: str = "bot") -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._prefix = prefix

    def _key(self, chat_id: int) -> str:
        return f"{self._prefix}:conversation:{chat_id}"

    async def get(self, chat_id: int) -> Conversation | None:
        raw = await self._redis.get(self._key(chat_id))
        return Conversation(**json.loads(raw)) if raw else None

    async def begin(self, chat_id: int, flow: str, step: str, **data: Any) -> Conversation:
        conversation = Conversation(flow, step, dict(data))
        await self.save(chat_id, conversation)
        return conversation

    async def save(self, chat_id: int, conversation: Conversation) -> None:
        body = {"flow": conversation.flow, "step": conversation.step, "data": conversation.data}
        await self._redis.set(self._key(chat_id), json.dumps(body, default=str), ex=self._ttl)

    async def end(self, chat_id: int) -> bool:
        return bool(await self._redis.delete(self._key(chat_id)))

    # --- reply targets ---------------------------------------------------------------------------

    def _reply_key(self, chat_id: int, message_id: int) -> str:
        return f"{self._prefix}:reply:{chat_id}:{message_id}"

    async def expect_reply(self, chat_id: int, message_id: int, kind: str, **data: Any) -> None:
        body = {"kind": kind, **data}
        await self._redis.set(self._reply_key(chat_id, message_id), json.dumps(body, default=str), ex=30 * 24 * 3600)

    async def reply_target(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        raw = await self._redis.get(self._reply_key(chat_id, message_id))
        return json.loads(raw) if raw else None
