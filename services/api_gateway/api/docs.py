"""``/openapi.json`` (every service's paths and the gateway's, merged) and ``/docs`` on it."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from services.api_gateway.api.deps import GatewayDep

router = APIRouter(include_in_schema=False)


@router.get("/openapi.json")
async def openapi(gateway: GatewayDep) -> JSONResponse:
    return JSONResponse(await gateway.openapi.document(gateway.session))


@router.get("/docs")
async def docs() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="RepitBot API")
