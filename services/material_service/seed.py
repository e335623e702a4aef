"""material-service's part of a seeded world (``shared/seeding.py``): each tutor's links, shared with all their
students, and its access links."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.material_service.models import Material
from shared.seeding import World, access_link_rows, copy_rows
from shared.tables import access_links


async def write(session: AsyncSession, world: World) -> dict[str, int]:
    materials = (
        {
            "id": m.id,
            "owner_id": m.tutor_id,
            "owner_role": "tutor",
            "title": m.title,
            "subject": m.subject,
            "url": m.url,
            "share_all": True,
            "created_at": m.created_at,
        }
        for m in world.materials
    )
    return {
        "materials": await copy_rows(session, Material.__table__, materials),
        "access_links": await copy_rows(session, access_links, access_link_rows(world)),
    }
