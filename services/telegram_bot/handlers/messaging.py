"""(being written: see the bot issue's progress note)"""

from __future__ import annotations

from telegram.ext import Application


def register(app: Application) -> None:  # type: ignore[type-arg]
    """Adds this area's handlers."""
