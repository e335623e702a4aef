"""analytics-service settings: the common ones plus the time zone of a tutor nobody has told us about."""

from __future__ import annotations

from shared.config import ServiceSettings


class AnalyticsServiceSettings(ServiceSettings):
    service_name: str = "analytics-service"
    port: int = 8007

    # a tutor whose user.registered has not arrived yet is reported in this IANA zone
    default_timezone: str = "Europe/Moscow"
