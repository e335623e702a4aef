"""payment-service's ASGI app: ``uvicorn services.payment_service.main:app``."""

from services.payment_service.app import build_app
from services.payment_service.settings import PaymentServiceSettings

app = build_app(PaymentServiceSettings())
