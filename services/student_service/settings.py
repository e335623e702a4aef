"""student-service settings: the common ones."""

from __future__ import annotations

from shared.config import ServiceSettings


class StudentServiceSettings(ServiceSettings):
    service_name: str = "student-service"
    port: int = 8008
