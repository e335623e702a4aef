"""What student-service's routes share: the ``{student_id}`` path parameter resolved for the caller."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from shared.auth.access import StudentAccessDep
from shared.auth.deps import CurrentUser
from shared.errors import NotFound


async def _student_id(student_id: str, caller: CurrentUser, access: StudentAccessDep) -> uuid.UUID:
    """``me`` is the calling student; any other id must be a student the caller may see (else 404)."""
    if student_id == "me":
        if caller.role != "student":
            raise NotFound("Profile not found")
        return uuid.UUID(caller.id)
    try:
        wanted = uuid.UUID(student_id)
    except ValueError:
        raise NotFound("Profile not found") from None
    if not await access.can_access(wanted):
        raise NotFound("Profile not found")
    return wanted


# the student the caller may see: themself (``me``), a linked student for a tutor or parent, anyone for an admin
StudentId = Annotated[uuid.UUID, Depends(_student_id)]
