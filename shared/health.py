"""``/health`` (alive), ``/ready`` (can serve: database, schema at head, broker) and ``/health/detailed``."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shared.migrations import current_revisions

router = APIRouter(include_in_schema=False)


async def _check_database(state: Any) -> str:
    try:
        async with state.db.engine.connect() as conn:
            current = await asyncio.wait_for(conn.run_sync(current_revisions), timeout=3)
    except Exception:
        return "unhealthy"
    if state.schema_heads and current != state.schema_heads:
        return "schema_outdated"
    return "healthy"


async def run_checks(state: Any) -> dict[str, str]:
    checks: dict[str, str] = {}
    if getattr(state, "db", None) is not None:
        checks["database"] = await _check_database(state)
    bus = getattr(state, "bus", None)
    if bus is not None:
        checks["broker"] = "healthy" if bus.is_connected else "unhealthy"
    for name, check in getattr(state, "extra_checks", {}).items():
        try:
            checks[name] = await check()
        except Exception:
            checks[name] = "unhealthy"
    return checks


@router.get("/health")
async def health(request: Request) -> dict[str, str]:
    settings = request.app.state.settings
    return {"status": "ok", "service": settings.service_name, "version": settings.version}


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    checks = await run_checks(request.app.state)
    ok = all(v == "healthy" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ok else "not_ready", "checks": checks},
        status_code=200 if ok else 503,
        headers=None if ok else {"Retry-After": "5"},
    )


@router.get("/health/detailed")
async def detailed(request: Request) -> dict[str, Any]:
    checks = await run_checks(request.app.state)
    ok = all(v == "healthy" for v in checks.values())
    settings = request.app.state.settings
    return {"status": "healthy" if ok else "degraded", "service": settings.service_name, "checks": checks}
