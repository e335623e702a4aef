"""homework-service's ASGI app: ``uvicorn services.homework_service.main:app``."""

from services.homework_service.app import build_app
from services.homework_service.settings import HomeworkServiceSettings

app = build_app(HomeworkServiceSettings())
