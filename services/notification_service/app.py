"""Assemble notification-service on the shared ``create_app``."""

from __future__ import annotations

from fastapi import FastAPI

from services.notification_service.api import alerts, deliveries, preferences, reminders
from services.notification_service.domain.scheduler import start_scheduler, stop_scheduler
from services.notification_service.events import subscriptions
from services.notification_service.settings import NotificationServiceSettings
from shared.app import create_app
from shared.clock import SYSTEM_CLOCK, Clock
from shared.events.bus import EventBus


def build_app(
    settings: NotificationServiceSettings, *, clock: Clock = SYSTEM_CLOCK, bus: EventBus | None = None
) -> FastAPI:
    return create_app(
        settings,
        routers=[preferences.router, deliveries.router, reminders.router, alerts.router],
        subscriptions=subscriptions(default_offsets=settings.default_reminder_offsets_minutes, clock=clock),
        on_startup=[start_scheduler],
        on_shutdown=[stop_scheduler],
        clock=clock,
        bus=bus,
    )
