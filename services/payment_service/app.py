"""Assemble payment-service on the shared ``create_app`` (``main.py`` builds it from the environment)."""

from __future__ import annotations

from fastapi import FastAPI

from services.payment_service.api import payments, prices, statements
from services.payment_service.events import subscriptions
from services.payment_service.settings import PaymentServiceSettings
from shared.app import create_app
from shared.clock import SYSTEM_CLOCK, Clock
from shared.events.bus import EventBus


def build_app(settings: PaymentServiceSettings, *, clock: Clock = SYSTEM_CLOCK, bus: EventBus | None = None) -> FastAPI:
    return create_app(
        settings,
        routers=[payments.router, prices.router, statements.router],
        subscriptions=subscriptions(default_currency=settings.default_currency),
        clock=clock,
        bus=bus,
    )
