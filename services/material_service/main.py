"""material-service's ASGI app: ``uvicorn services.material_service.main:app``."""

from services.material_service.app import build_app
from services.material_service.settings import MaterialServiceSettings

app = build_app(MaterialServiceSettings())
