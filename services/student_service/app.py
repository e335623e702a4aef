"""Assemble student-service on the shared ``create_app`` (``main.py`` builds it from the environment)."""

from __future__ import annotations

from fastapi import FastAPI

from services.student_service.api import adjustments, leaderboard, profiles
from services.student_service.events import SUBSCRIPTIONS
from services.student_service.settings import StudentServiceSettings
from shared.app import create_app
from shared.clock import SYSTEM_CLOCK, Clock
from shared.events.bus import EventBus


# the leaderboard's static paths first: "/students/leaderboard/..." is never read as a student id
def build_app(settings: StudentServiceSettings, *, clock: Clock = SYSTEM_CLOCK, bus: EventBus | None = None) -> FastAPI:
    return create_app(
        settings,
        routers=[leaderboard.router, profiles.router, adjustments.router],
        subscriptions=SUBSCRIPTIONS,
        clock=clock,
        bus=bus,
    )
