"""Domain events: the envelope, the catalogue, the bus, the outbox and the inbox (DESIGN.md §5)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from shared.events.envelope import Envelope

# A handler applies one event inside the consumer's transaction (the inbox row is in it too).
EventHandler = Callable[["AsyncSession", "Envelope"], Awaitable[None]]
