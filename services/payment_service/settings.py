"""payment-service settings: the common ones plus the currency an account starts in."""

from __future__ import annotations

from pydantic import Field

from shared.config import ServiceSettings


class PaymentServiceSettings(ServiceSettings):
    service_name: str = "payment-service"
    port: int = 8004

    # the currency of a balance nobody has paid into or been charged on yet (ISO 4217)
    default_currency: str = Field("RUB", pattern=r"^[A-Z]{3}$")
