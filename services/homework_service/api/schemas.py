"""Request and response bodies of /api/v1/homework."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field, HttpUrl

from services.homework_service.domain.homework import Draft
from services.homework_service.models import Homework, Submission

MaterialIds = list[uuid.UUID]
ShownStatus = Literal["assigned", "submitted", "returned", "graded", "overdue"]


class HomeworkIn(BaseModel):
    student_id: uuid.UUID
    title: str = Field(min_length=1, max_length=300)
    description: str | None = Field(None, max_length=20_000)
    due_at: AwareDatetime
    lesson_id: uuid.UUID | None = None
    link: HttpUrl | None = None
    # materials and photos attached by the tutor, uploaded to material-service first
    material_ids: MaterialIds = Field(default_factory=list, max_length=50)

    def draft(self) -> Draft:
        return Draft(
            student_id=self.student_id,
            title=self.title,
            description=self.description,
            due_at=self.due_at,
            lesson_id=self.lesson_id,
            link=str(self.link) if self.link else None,
            material_ids=list(dict.fromkeys(self.material_ids)),
        )


class SubmissionIn(BaseModel):
    text: str | None = Field(None, max_length=50_000)
    # photos and files, uploaded to material-service first
    material_ids: MaterialIds = Field(default_factory=list, max_length=50)


class GradeIn(BaseModel):
    grade: int = Field(ge=1, le=5)
    comment: str | None = Field(None, max_length=10_000)


class ReturnIn(BaseModel):
    comment: str | None = Field(None, max_length=10_000)


class SubmissionOut(BaseModel):
    id: uuid.UUID
    homework_id: uuid.UUID
    student_id: uuid.UUID
    text: str | None
    material_ids: MaterialIds
    late: bool
    submitted_at: datetime

    @classmethod
    def of(cls, submission: Submission) -> SubmissionOut:
        return cls.model_validate(submission, from_attributes=True)


class HomeworkOut(BaseModel):
    id: uuid.UUID
    tutor_id: uuid.UUID
    student_id: uuid.UUID
    lesson_id: uuid.UUID | None
    title: str
    description: str | None
    link: str | None
    material_ids: MaterialIds
    due_at: datetime
    status: ShownStatus
    grade: int | None
    comment: str | None
    graded_at: datetime | None
    returned_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, homework: Homework, now: datetime) -> HomeworkOut:
        fields = {name: getattr(homework, name) for name in cls.model_fields if name != "status"}
        return cls(**fields, status=homework.shown_status(now))


class GradedOut(HomeworkOut):
    submission_id: uuid.UUID | None
