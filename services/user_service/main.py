"""user-service's ASGI app: ``uvicorn services.user_service.main:app``."""

from services.user_service.app import build_app
from services.user_service.settings import UserServiceSettings

app = build_app(UserServiceSettings())
