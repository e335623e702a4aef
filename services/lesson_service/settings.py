"""lesson-service settings: the common ones plus the late-cancellation window, series limits and the feed URL."""

from __future__ import annotations

from zoneinfo import available_timezones

from pydantic import Field, field_validator

from shared.config import ServiceSettings


class LessonServiceSettings(ServiceSettings):
    service_name: str = "lesson-service"
    port: int = 8002

    # a student's (or parent's) cancellation closer than this to the start is chargeable unless the tutor excuses it
    late_cancel_window_hours: int = Field(24, ge=0, le=24 * 14)
    # the time zone of a user lesson-service has not heard of yet (user.registered / user.updated)
    default_timezone: str = "Europe/Moscow"
    # the most lessons one recurring series may create
    max_series_lessons: int = Field(100, ge=1, le=500)
    # where clients reach the gateway: the base of the iCalendar feed URLs handed out
    public_base_url: str = "http://127.0.0.1:8000"

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in available_timezones():
            raise ValueError(f"unknown IANA time zone {value!r}")
        return value
