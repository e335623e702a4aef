"""Assemble lesson-service on the shared ``create_app`` (``main.py`` builds it from the environment)."""

from __future__ import annotations

from fastapi import FastAPI

from services.lesson_service.api import calendar, lessons, plans
from services.lesson_service.events import SUBSCRIPTIONS
from services.lesson_service.settings import LessonServiceSettings
from shared.app import create_app
from shared.clock import SYSTEM_CLOCK, Clock
from shared.events.bus import EventBus


def build_app(settings: LessonServiceSettings, *, clock: Clock = SYSTEM_CLOCK, bus: EventBus | None = None) -> FastAPI:
    return create_app(
        settings,
        # calendar before lessons: its fixed paths must not be read as a lesson id
        routers=[calendar.router, plans.router, lessons.router],
        subscriptions=SUBSCRIPTIONS,
        clock=clock,
        bus=bus,
    )
