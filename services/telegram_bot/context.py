"""What every handler needs, built once at start-up and kept in ``application.bot_data``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from services.telegram_bot.api import MicroserviceClient, SessionStore
from services.telegram_bot.integrations import StudentServiceIntegration
from services.telegram_bot.settings import BotSettings
from services.telegram_bot.state import ConversationStore
from shared.clock import Clock

if TYPE_CHECKING:
    from telegram import Bot as TelegramBot

    from services.telegram_bot.offline import OfflineStore

KEY = "repitbot"


@dataclass
class Bot:
    settings: BotSettings
    api: MicroserviceClient
    sessions: SessionStore
    conversations: ConversationStore
    clock: Clock
    offline: OfflineStore | None = None
    telegram: TelegramBot | None = None  # PTB's client, for sends outside an update (replays, notifications)
    username: str = "RepitBot"  # the bot's @username, from getMe at start-up (deep links)
    students: StudentServiceIntegration = field(init=False)  # student-service's game layer, over ``api``

    def __post_init__(self) -> None:
        self.students = StudentServiceIntegration(self.api)


def of(context: Any) -> Bot:
    """The bot's services from a handler's ``context`` (or an ``Application``)."""
    bot_data = context.bot_data if hasattr(context, "bot_data") else context.application.bot_data
    return bot_data[KEY]  # type: ignore[no-any-return]
