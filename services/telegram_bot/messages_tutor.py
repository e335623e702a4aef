"""Texts of one area of the bot (merged into ``messages.MESSAGES``; same rules)."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {}
