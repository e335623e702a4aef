"""What homework routes need: who is calling, and "the homework with this id that the caller may see"."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from services.homework_service.domain.homework import get_homework
from services.homework_service.models import Homework
from shared.auth.access import StudentAccessDep
from shared.auth.deps import Caller, CurrentUser
from shared.db import SessionDep
from shared.errors import Forbidden, NotFound


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
