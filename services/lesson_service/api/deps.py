"""What lesson routes need: the settings, who is calling, and "the lesson with this id that the caller may see"."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.lesson_service.domain.lessons import lock_lesson, lock_lesson_snapshot
from services.lesson_service.models import Lesson
from services.lesson_service.settings import LessonServiceSettings
from shared.auth.access import StudentAccessDep
from shared.auth.deps import Caller, CurrentUser, user_id_of
from shared.db import SessionDep
from shared.errors import Forbidden, NotFound


async def _settings(request: Request) -> LessonServiceSettings:
    return request.app.state.settings


Settings = Annotated[LessonServiceSettings, Depends(_settings)]


@dataclass
class SeenLesson:
    """A lesson the caller may see, locked for the request's change."""

    lesson: Lesson
    caller: Caller

    @property
    def caller_id(self) -> uuid.UUID:
        return user_id_of(self.caller)

    @property
    def is_its_tutor(self) -> bool:
        return self.caller.role == "tutor" and self.caller.id == str(self.lesson.tutor_id)

    def require_tutor(self) -> Lesson:
        """Only the lesson's tutor changes it; others who see it get 403."""
        if not self.is_its_tutor:
            raise Forbidden("Only the lesson's tutor may do this", details={"lesson_id": str(self.lesson.id)})
        return self.lesson


async def can_see(lesson: Lesson, caller: Caller, access: StudentAccessDep) -> bool:
    if caller.is_admin or caller.is_service:
        return True
    if caller.role == "tutor":
        return caller.id == str(lesson.tutor_id)  # a tutor sees their own lessons, not a former tutor's
    return await access.can_access(lesson.student_id)


async def _seen(lesson: Lesson, caller: Caller, access: StudentAccessDep) -> SeenLesson:
    if not await can_see(lesson, caller, access):
        raise NotFound("Lesson not found")
    return SeenLesson(lesson, caller)


async def _seen_lesson(
    lesson_id: uuid.UUID, caller: CurrentUser, session: SessionDep, access: StudentAccessDep
) -> SeenLesson:
    return await _seen(await lock_lesson(session, lesson_id), caller, access)


async def _seen_lesson_snapshot(
    lesson_id: uuid.UUID, caller: CurrentUser, session: SessionDep, access: StudentAccessDep
) -> SeenLesson:
    return await _seen(await lock_lesson_snapshot(session, lesson_id), caller, access)


VisibleLesson = Annotated[SeenLesson, Depends(_seen_lesson)]
# the same lesson as a snapshot no session tracks, for a route that changes it with a statement of its own
VisibleLessonSnapshot = Annotated[SeenLesson, Depends(_seen_lesson_snapshot)]
