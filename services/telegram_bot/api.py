"""How the bot talks to RepitBot: everything through the gateway, as the Telegram user it serves.

- ``SessionStore`` keeps each Telegram user's session (their RepitBot id, role, language and tokens)
  in Redis, so a bot restart signs nobody out; it also maps a RepitBot user id back to the chat, for
  notifications that arrive without one. Sessions are sealed (Fernet: AES and an HMAC) with a key
  derived from the bot's own client secret, so a copy of Redis gives away nobody's tokens.
- ``MicroserviceClient`` sends a call for a session: shared ``ServiceClient`` underneath (timeouts,
  retries of idempotent calls and of POSTs with an ``Idempotency-Key``, a circuit breaker); the
  user's access token is refreshed before it expires and once more after a 401. Only ``/start``
  creates or joins an account (the bot-only ``/api/v1/auth/telegram`` exchange), so pressing a button
  never registers anyone by accident.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import httpx
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from redis.asyncio import Redis

from services.telegram_bot.settings import BotSettings
from shared.clock import SYSTEM_CLOCK, Clock
from shared.errors import ServiceUnavailable
from shared.http import ServiceClient

log = logging.getLogger(__name__)

REFRESH_MARGIN_SECONDS = 60


class Unavailable(Exception):
    """The gateway or the service behind it did not answer (or its breaker is open)."""


class NotSignedIn(Exception):
    """This Telegram user has no session: they must press /start."""


@dataclass
class ApiError(Exception):
    """A 4xx answer: the request was understood and refused."""

    status: int
    code: str
    message: str
    details: Any = None

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"

    def field_errors(self) -> list[str]:
        """The fields a 422 names."""
        if not isinstance(self.details, list):
            return []
        return [
            ".".join(str(part) for part in item.get("loc", [])[1:]) for item in self.details if isinstance(item, dict)
        ]


@dataclass
class UserSession:
    telegram_id: int
    user_id: str
    role: str
    full_name: str
    language: str
    timezone: str
    access_token: str
    refresh_token: str
    expires_at: float  # the clock's wall time, seconds


def session_seal(client_secret: str) -> Fernet:
    """The key sessions are sealed with: derived from the bot's client secret (no second secret to deploy;
    rotating that secret unseals nobody's session any more: each user presses /start once)."""
    key = HKDF(algorithm=SHA256(), length=32, salt=None, info=b"repitbot telegram-bot sessions").derive(
        client_secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


class SessionStore:
    def __init__(self, redis: Redis, seal: Fernet, prefix: str = "bot") -> None:
        self._redis = redis
        self._seal = seal
        self._prefix = prefix

    async def get(self, telegram_id: int) -> UserSession | None:
        """The user's session; None when there is none, or it was sealed with another key (they /start again).
        One stored before sessions were sealed (plain JSON) is read, and sealed when it is next saved."""
        raw = await self._redis.get(f"{self._prefix}:session:{telegram_id}")
        if not raw:
            return None
        if raw.startswith("{"):
            return UserSession(**json.loads(raw))
        try:
            return UserSession(**json.loads(self._seal.decrypt(raw)))
        except InvalidToken:
            log.warning("a session sealed with another key was ignored", extra={"telegram_id": telegram_id})
            return None

    async def save(self, session: UserSession) -> None:
        sealed = self._seal.encrypt(json.dumps(asdict(session)).encode()).decode()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(f"{self._prefix}:session:{session.telegram_id}", sealed)
            pipe.set(f"{self._prefix}:chat:{session.user_id}", session.telegram_id)
            await pipe.execute()

    async def chat_of(self, user_id: str) -> int | None:
        raw = await self._redis.get(f"{self._prefix}:chat:{user_id}")
        return int(raw) if raw else None

    async def mark_blocked(self, telegram_id: int, blocked: bool = True) -> None:
        key = f"{self._prefix}:blocked"
        await (self._redis.sadd(key, telegram_id) if blocked else self._redis.srem(key, telegram_id))

    async def is_blocked(self, telegram_id: int) -> bool:
        return bool(await self._redis.sismember(f"{self._prefix}:blocked", telegram_id))


class MicroserviceClient:
    def __init__(self, settings: BotSettings, sessions: SessionStore, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.settings = settings
        self.sessions = sessions
        self.clock = clock
        self.base = settings.gateway_url.rstrip("/")
        # the bot's own service token also comes through the gateway (it routes /api/v1/auth)
        through_gateway = settings.model_copy(update={"user_service_url": self.base})
        self.http = ServiceClient(through_gateway, clock=clock, timeout=settings.gateway_timeout_seconds)

    async def aclose(self) -> None:
        await self.http.aclose()

    # --- signing in ----------------------------------------------------------------------------

    async def sign_in(
        self, telegram_id: int, full_name: str, language: str, invite_code: str | None = None
    ) -> tuple[UserSession, bool]:
        """Find or create the user behind this Telegram account (redeeming an invite); True if new."""
        body: dict[str, Any] = {"telegram_id": telegram_id, "full_name": full_name[:200] or "—", "language": language}
        if invite_code:
            body["invite_code"] = invite_code
        response = await self._call(lambda: self.http.post(f"{self.base}/api/v1/auth/telegram", json=body))
        answer = _answer(response)
        session = self._session_from(telegram_id, answer)
        await self.sessions.save(session)
        return session, response.status_code == 201

    # --- calls for a user ----------------------------------------------------------------------

    async def call(
        self,
        session: UserSession,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        files: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """The answer's JSON (or bytes for a file); ApiError for a 4xx, Unavailable when nobody answers."""
        session = await self._fresh(session)
        headers = {"Authorization": f"Bearer {session.access_token}"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        url = f"{self.base}{path}"

        async def send() -> httpx.Response:
            return await self.http.request(
                method, url, json=json_body, params=params, files=files, data=data, headers=headers, authenticate=False
            )

        response = await self._call(send)
        if response.status_code == 401:  # revoked or rotated: sign in again (the account exists) and retry once
            session = await self._exchange(session)
            headers["Authorization"] = f"Bearer {session.access_token}"
            response = await self._call(send)
        return _answer(response)

    async def get(self, session: UserSession, path: str, **params: Any) -> Any:
        return await self.call(session, "GET", path, params={k: v for k, v in params.items() if v is not None})

    async def post(self, session: UserSession, path: str, body: Any = None, *, key: str | None = None) -> Any:
        """A POST; ``key`` (an Idempotency-Key) makes it safe to retry and to replay from the offline queue."""
        return await self.call(session, "POST", path, json_body=body, idempotency_key=key)

    @staticmethod
    def new_key() -> str:
        return str(uuid.uuid4())

    # --- internals -----------------------------------------------------------------------------

    async def _fresh(self, session: UserSession) -> UserSession:
        if self.clock.now().timestamp() < session.expires_at - REFRESH_MARGIN_SECONDS:
            return session
        response = await self._call(
            lambda: self.http.post(
                f"{self.base}/api/v1/auth/refresh", json={"refresh_token": session.refresh_token}, authenticate=False
            )
        )
        if response.status_code != 200:  # refresh token expired or revoked
            return await self._exchange(session)
        tokens = response.json()
        session.access_token, session.refresh_token = tokens["access_token"], tokens["refresh_token"]
        session.expires_at = self.clock.now().timestamp() + float(tokens["expires_in"])
        await self.sessions.save(session)
        return session

    async def _exchange(self, session: UserSession) -> UserSession:
        """New tokens for a known user, through the bot-only exchange (finds, never creates here)."""
        fresh, _ = await self.sign_in(session.telegram_id, session.full_name, session.language)
        return fresh

    def _session_from(self, telegram_id: int, answer: dict[str, Any]) -> UserSession:
        user = answer["user"]
        return UserSession(
            telegram_id=telegram_id,
            user_id=str(user["id"]),
            role=user["role"],
            full_name=user.get("full_name") or "",
            language=user.get("language") or "ru",
            timezone=user.get("timezone") or "Europe/Moscow",
            access_token=answer["access_token"],
            refresh_token=answer["refresh_token"],
            expires_at=self.clock.now().timestamp() + float(answer["expires_in"]),
        )

    @staticmethod
    async def _call(send: Any) -> httpx.Response:
        try:
            response: httpx.Response = await send()
        except ServiceUnavailable as exc:
            raise Unavailable(str(exc)) from exc
        if response.status_code in (502, 503, 504):
            raise Unavailable(f"HTTP {response.status_code}")
        return response


def _answer(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            error = {"code": "http_error", "message": response.text[:200]}
        raise ApiError(response.status_code, error.get("code", "error"), error.get("message", ""), error.get("details"))
    if response.status_code == 204 or not response.content:
        return None
    if response.headers.get("content-type", "").startswith("application/json"):
        return response.json()
    return response.content
