"""notification-service's ASGI app: ``uvicorn services.notification_service.main:app``."""

from services.notification_service.app import build_app
from services.notification_service.settings import NotificationServiceSettings

app = build_app(NotificationServiceSettings())
