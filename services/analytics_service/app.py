"""Assemble analytics-service on the shared ``create_app`` (``main.py`` builds it from the environment)."""

from __future__ import annotations

from fastapi import FastAPI

from services.analytics_service.api import reports
from services.analytics_service.events import subscriptions
from services.analytics_service.metrics import Metrics
from services.analytics_service.settings import AnalyticsServiceSettings
from shared.app import create_app
from shared.clock import SYSTEM_CLOCK, Clock
from shared.events.bus import EventBus
from shared.fleet import by_name

SPEC = by_name("analytics-service")


def build_app(
    settings: AnalyticsServiceSettings, *, clock: Clock = SYSTEM_CLOCK, bus: EventBus | None = None
) -> FastAPI:
    return create_app(
        settings,
        routers=[reports.router],
        subscriptions=subscriptions(Metrics(settings.service_name)),
        clock=clock,
        bus=bus,
    )
