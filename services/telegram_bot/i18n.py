"""The bot's words: Russian by default, English for English-language users.

Every message lives once in ``MESSAGES`` with both languages side by side, so a missing translation
is visible in review and caught by a test. Handlers call ``t(lang, key, **params)``.
"""

from __future__ import annotations

from typing import Any

from services.telegram_bot.messages import MESSAGES

LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "ru"


def language_of(telegram_language: str | None, chosen: str | None = None) -> str:
    """The user's own choice if they made one, else English for an English Telegram client, else Russian."""
    if chosen in LANGUAGES:
        return chosen  # type: ignore[return-value]
    if telegram_language and telegram_language.lower().startswith("en"):
        return "en"
    return DEFAULT_LANGUAGE


def t(lang: str, key: str, **params: Any) -> str:
    texts = MESSAGES[key]
    text = texts.get(lang) or texts[DEFAULT_LANGUAGE]
    return text.format(**params) if params else text


def has(key: str) -> bool:
    return key in MESSAGES
