"""Service accounts (the bot, services calling /internal): client credentials from SERVICE_ACCOUNTS."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

BOT_CLIENT_ID = "telegram-bot"  # CONTRACTS.md: the only caller allowed at /auth/telegram

# Compared against when the client id is unknown, so the answer takes as long as for a known one.
_NO_SUCH_CLIENT = "\x00" * 32


def client_is_authentic(accounts: Mapping[str, str], client_id: str, client_secret: str) -> bool:
    expected = accounts.get(client_id)
    matches = hmac.compare_digest((expected or _NO_SUCH_CLIENT).encode(), client_secret.encode())
    return expected is not None and matches
