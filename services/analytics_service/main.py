"""analytics-service's ASGI app: ``uvicorn services.analytics_service.main:app``."""

from services.analytics_service.app import build_app
from services.analytics_service.settings import AnalyticsServiceSettings

app = build_app(AnalyticsServiceSettings())
