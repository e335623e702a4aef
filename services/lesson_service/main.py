"""lesson-service's ASGI app: ``uvicorn services.lesson_service.main:app``."""

from services.lesson_service.app import build_app
from services.lesson_service.settings import LessonServiceSettings

app = build_app(LessonServiceSettings())
