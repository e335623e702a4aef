"""What homework routes need: who is calling, and "the homework with this id that the caller may see"."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from services.homework_service.domain.homework import get_homework
from services.homework_service.models import Homework
from shared.auth.access import StudentAccessDep
from shared.auth.deps import Caller, CurrentUser, require_roles
from shared.db import SessionDep
from shared.errors import Forbidden, NotFound, Unauthorized


def user_id_of(caller: Caller) -> uuid.UUID:
    try:
        return uuid.UUID(caller.id)
    except ValueError:
        raise Unauthorized("Invalid token", details={"reason": "subject is not a user id"}) from None


async def _tutor(caller: Annotated[Caller, Depends(require_roles("tutor"))]) -> uuid.UUID:
    return user_id_of(caller)


TutorId = Annotated[uuid.UUID, Depends(_tutor)]


async def _person(caller: Annotated[Caller, Depends(require_roles("tutor", "student", "parent", "admin"))]) -> Caller:
    user_id_of(caller)
    return caller


Person = Annotated[Caller, Depends(_person)]


@dataclass
class SeenHomework:
    """An assignment the caller may see, locked for the request's change."""

    homework: Homework
    caller: Caller

    def require_tutor(self) -> Homework:
        """Only the assignment's tutor grades or returns it; others who see it get 403."""
        if not (self.caller.role == "tutor" and self.caller.id == str(self.homework.tutor_id)):
            raise Forbidden("Only the homework's tutor may do this", details={"homework_id": str(self.homework.id)})
        return self.homework

    def require_student(self) -> Homework:
        """Only the student it was assigned to hands it in."""
        if not (self.caller.role == "student" and self.caller.id == str(self.homework.student_id)):
            raise Forbidden("Only the homework's student may submit it", details={"homework_id": str(self.homework.id)})
        return self.homework


async def can_see(homework: Homework, caller: Caller, access: StudentAccessDep) -> bool:
    if caller.is_admin or caller.is_service:
        return True
    if caller.role == "tutor":
        return caller.id == str(homework.tutor_id)
    return await access.can_access(homework.student_id)


async def _seen(
    homework_id: uuid.UUID, caller: CurrentUser, session: SessionDep, access: StudentAccessDep
) -> SeenHomework:
    homework = await get_homework(session, homework_id, for_update=True)
    if not await can_see(homework, caller, access):
        raise NotFound("Homework not found")
    return SeenHomework(homework, caller)


VisibleHomework = Annotated[SeenHomework, Depends(_seen)]
