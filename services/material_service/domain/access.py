"""Who may see a material (DESIGN.md §4; anyone else gets 404, as for a missing one):

- admin and service accounts: every material; the owner: their own;
- a student's own file (a homework file): the student and their tutors, nobody else;
- a tutor's material: the students it is shared with (by name, or all the tutor's students),
  and the parents of those students, while the tutor–student link is active.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.material_service.models import Material, MaterialShare
from shared.auth.access import AccessResolver
from shared.auth.deps import Caller
from shared.tables import access_links

MAX_PARENT_CHECKS = 50


@dataclass(frozen=True)
class MaterialAccess:
    """The shared access resolver, bound to one request's caller and transaction."""

    resolver: AccessResolver
    session: AsyncSession
    caller: Caller

    async def can_access(self, student_id: uuid.UUID) -> bool:
        """Whether the caller sees this student (a tutor's or parent's link, the student themself)."""
        return await self.resolver.can_access(self.session, self.caller, student_id)

    async def ensure(self, student_id: uuid.UUID) -> None:
        await self.resolver.ensure_student_access(self.session, self.caller, student_id)


def is_owner(caller: Caller, material: Material) -> bool:
    return caller.id == str(material.owner_id)


async def tutor_teaches(access: MaterialAccess, tutor_id: uuid.UUID, student_id: uuid.UUID) -> bool:
    """Whether the tutor is linked to the student (local links, else user-service)."""
    as_tutor = Caller(id=str(tutor_id), role="tutor", claims=access.caller.claims)
    return await access.resolver.can_access(access.session, as_tutor, student_id)


async def can_view(access: MaterialAccess, material: Material) -> bool:
    caller = access.caller
    if caller.is_admin or caller.is_service or is_owner(caller, material):
        return True
    if material.owner_role == "student":
        return caller.role == "tutor" and await access.can_access(material.owner_id)
    if caller.role == "student":
        student = uuid.UUID(caller.id)
        return await _shared_with(access, material, student) and await tutor_teaches(access, material.owner_id, student)
    if caller.role == "parent":
        for child in await _children(access, material):
            if await access.can_access(child) and await tutor_teaches(access, material.owner_id, child):
                return True
    return False


async def _shared_with(access: MaterialAccess, material: Material, student_id: uuid.UUID) -> bool:
    if material.share_all:
        return True
    found = await access.session.scalar(
        select(MaterialShare.student_id).where(
            MaterialShare.material_id == material.id, MaterialShare.student_id == student_id
        )
    )
    return found is not None


async def _children(access: MaterialAccess, material: Material) -> list[uuid.UUID]:
    """The students through whom a parent might see the material."""
    session = access.session
    if material.share_all:
        rows = await session.scalars(
            select(access_links.c.student_id)
            .where(
                access_links.c.principal_id == uuid.UUID(access.caller.id),
                access_links.c.relation == "parent",
                access_links.c.active == 1,
            )
            .limit(MAX_PARENT_CHECKS)
        )
    else:
        rows = await session.scalars(
            select(MaterialShare.student_id).where(MaterialShare.material_id == material.id).limit(MAX_PARENT_CHECKS)
        )
    return list(rows)
