"""telegram-bot settings: where Telegram and the gateway are, how updates arrive, where state lives."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from shared.config import ServiceSettings, secret


class BotSettings(ServiceSettings):
    uses_database: ClassVar[bool] = False  # no database of its own
    service_name: str = "telegram-bot"
    # /health and /metrics for operators (the bot serves no API of its own)
    port: int = 8009

    # from @BotFather; without one `make run` starts everything else and says how to add it
    telegram_bot_token: str | None = secret(None)
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    telegram_file_base_url: str = "https://api.telegram.org/file/bot"

    # long polling unless a public HTTPS URL is given; then Telegram POSTs updates to it
    webhook_url: str | None = None
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = 8443
    webhook_secret: str | None = secret(None)

    gateway_url: str = "http://127.0.0.1:8000"
    gateway_timeout_seconds: float = Field(10.0, gt=0)
    # the bot's account at user-service: the only caller allowed to use /api/v1/auth/telegram
    service_client_id: str | None = "telegram-bot"

    # conversation state and user sessions (Redis survives a bot restart); a separate database number
    redis_url: str = "redis://127.0.0.1:6379/1"
    conversation_ttl_seconds: int = Field(24 * 3600, gt=0)
    # read-only views answer from here when the fleet is down; writes wait here until it is back
    offline_db_path: str = "var/telegram-bot/offline.sqlite3"
    replay_interval_seconds: float = Field(15.0, gt=0)

    # Telegram allows ~30 messages/s overall and 1/s per chat; notification sends stay under both
    send_rate_per_second: float = Field(25.0, gt=0)
    notification_max_attempts: int = Field(5, ge=1)
