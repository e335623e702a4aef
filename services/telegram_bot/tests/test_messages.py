"""The catalogue: every text in Russian and English with the same placeholders; the language rule."""

from __future__ import annotations

import string

from services.telegram_bot.i18n import LANGUAGES, language_of, t
from services.telegram_bot.messages import MESSAGES


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_message_has_both_languages_with_the_same_placeholders() -> None:
    for key, texts in MESSAGES.items():
        assert set(texts) == set(LANGUAGES), key
        assert placeholders(texts["ru"]) == placeholders(texts["en"]), key
        assert all(text.strip() for text in texts.values()), key


def test_russian_by_default_english_for_english_clients_and_a_chosen_language_wins() -> None:
    assert language_of(None) == "ru"
    assert language_of("de") == "ru"
    assert language_of("en-GB") == "en"
    assert language_of("en", chosen="ru") == "ru"
    assert language_of("ru", chosen="en") == "en"
    assert t("en", "welcome_back", name="Ann") == "Welcome back, Ann!"
    assert t("ru", "welcome_back", name="Аня") == "С возвращением, Аня!"
