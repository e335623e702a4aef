"""homework-service settings: the common ones plus how often the overdue scheduler looks."""

from __future__ import annotations

from pydantic import Field

from shared.config import ServiceSettings


class HomeworkServiceSettings(ServiceSettings):
    service_name: str = "homework-service"
    port: int = 8003

    # how often the background loop asks "what is overdue now" (0 turns the loop off: tests drive it)
    overdue_interval_seconds: float = Field(60.0, ge=0)
    # the most assignments one pass marks overdue (the next pass takes the rest)
    overdue_batch_size: int = Field(100, ge=1, le=10_000)
