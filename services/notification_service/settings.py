"""notification-service settings: the common ones plus the scheduler's interval and the reminder defaults."""

from __future__ import annotations

from pydantic import Field

from shared.config import ServiceSettings


class NotificationServiceSettings(ServiceSettings):
    service_name: str = "notification-service"
    port: int = 8006

    # how often the scheduler asks "what is due now" (reminders, homework due, deferred, digests; 0: off, tests drive it)
    reminder_interval_seconds: float = Field(30.0, ge=0)
    # the most rows one transaction of a pass takes (the next batch takes the rest)
    reminder_batch_size: int = Field(100, ge=1, le=10_000)
    # minutes before a lesson a reminder goes out, for a user who chose nothing else (24 h and 1 h)
    default_reminder_offsets_minutes: list[int] = Field(default_factory=lambda: [1440, 60])
    # the bearer token Alertmanager's webhook sends (http_config.authorization); empty: the webhook refuses all
    alertmanager_token: str = Field("", repr=False)
