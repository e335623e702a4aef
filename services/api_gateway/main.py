"""api-gateway's ASGI app, on port 8000 in front of every service.

    uvicorn services.api_gateway.main:app --port 8000 --loop uvloop --http httptools

``make run`` starts it with the rest of the fleet (its environment:
``python -m shared.runner env api-gateway``); its settings are listed in
``services/api_gateway/settings.py`` and the README's "API gateway" section.
"""

from services.api_gateway.app import build_gateway
from services.api_gateway.settings import GatewaySettings

app = build_gateway(GatewaySettings())
