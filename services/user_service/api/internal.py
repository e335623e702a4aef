"""/internal: answers for other services, with a service token only; not routed by the gateway."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from services.user_service.api.schemas import LinkOut
from services.user_service.domain import links
from shared.auth.deps import ServiceCaller
from shared.db import SessionDep
from shared.errors import NotFound

router = APIRouter(prefix="/internal", tags=["internal"], include_in_schema=False)


@router.get("/links/{principal_id}/{student_id}")
async def read_link(principal_id: uuid.UUID, student_id: uuid.UUID, _: ServiceCaller, session: SessionDep) -> LinkOut:
    """Whether a tutor or parent may see a student now: asked when a service's access_links table misses."""
    link = await links.active_link(session, principal_id, student_id)
    if link is None:
        raise NotFound("No active link")
    return LinkOut(principal_id=link.principal_id, student_id=link.student_id, relation=link.relation)
