"""Request and response bodies of /api/v1/lessons."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from services.lesson_service.domain.lessons import WEEKDAY_CODES, LessonDraft
from services.lesson_service.models import Lesson

LessonType = Literal["regular", "trial", "exam_prep"]
Mastery = Literal["not_learned", "learned", "mastered"]
Scope = Literal["this", "following"]
Weekday = Literal["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text500 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Url = Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=1000)]
Duration = Annotated[int, Field(ge=15, le=600)]
assert set(WEEKDAY_CODES) == set(Weekday.__args__)  # type: ignore[attr-defined]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LessonIn(_Strict):
    student_id: uuid.UUID
    starts_at: AwareDatetime  # in the past: a lesson already held, recorded afterwards
    duration_minutes: Duration = 60
    subject: Text200
    topic: Text500 | None = None
    lesson_type: LessonType = "regular"
    price: int | None = Field(None, ge=0, description="the lesson's own price in minor units (kopecks)")
    currency: Currency = "RUB"
    online_url: Url | None = None
    place: Text500 | None = None

    def draft(self) -> LessonDraft:
        return LessonDraft(
            student_id=self.student_id,
            starts_at=self.starts_at,
            duration_minutes=self.duration_minutes,
            subject=self.subject,
            topic=self.topic,
            lesson_type=self.lesson_type,
            price=self.price,
            currency=self.currency,
            online_url=self.online_url,
            place=self.place,
        )


class SeriesIn(LessonIn):
    """Weekly on ``weekdays`` at the first lesson's local time, ``until`` a date or ``count`` lessons."""

    weekdays: list[Weekday] = Field(min_length=1, max_length=7)
    until: date | None = None
    count: int | None = Field(None, ge=1)
    timezone: str | None = Field(None, description="IANA zone of the wall-clock time; default the tutor's")

    @model_validator(mode="after")
    def _until_or_count(self) -> SeriesIn:
        if (self.until is None) == (self.count is None):
            raise ValueError("give exactly one of until and count")
        return self


class LessonPatch(_Strict):
    """Reschedule or edit; ``scope=following`` also changes the series' later lessons."""

    starts_at: AwareDatetime | None = None
    duration_minutes: Duration | None = None
    subject: Text200 | None = None
    topic: Text500 | None = None
    lesson_type: LessonType | None = None
    price: int | None = Field(None, ge=0)
    currency: Currency | None = None
    online_url: Url | None = None
    place: Text500 | None = None
    scope: Scope = "this"


class CancelIn(_Strict):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] | None = None
    # the tutor's decision: false (the default) excused and free, true chargeable; ignored for a student's
    # or parent's cancellation, which is chargeable inside the late window
    chargeable: bool = False
    scope: Scope = "this"


class CompleteIn(_Strict):
    grade: int | None = Field(None, ge=1, le=5)
    notes: Annotated[str, StringConstraints(max_length=5000)] | None = None
    topic: Text500 | None = None
    attendance: Literal["present", "late"] = "present"
    mastery: Mastery | None = None
    mastery_comment: Annotated[str, StringConstraints(max_length=2000)] | None = None
    skills: list[Text200] = Field(default_factory=list, max_length=50)


class MissedIn(_Strict):
    reason: Annotated[str, StringConstraints(max_length=1000)] | None = None


class Price(BaseModel):
    amount: int
    currency: str


class LessonOut(BaseModel):
    id: uuid.UUID
    tutor_id: uuid.UUID
    student_id: uuid.UUID
    series_id: uuid.UUID | None
    status: str
    starts_at: datetime
    ends_at: datetime
    duration_minutes: int
    subject: str
    topic: str | None
    plan_topic_id: uuid.UUID | None
    lesson_type: str
    price: int | None
    currency: str | None
    online_url: str | None
    place: str | None
    chargeable: bool
    cancelled_at: datetime | None
    cancelled_by: uuid.UUID | None
    cancelled_by_role: str | None
    cancel_reason: str | None
    excused_by: uuid.UUID | None
    completed_at: datetime | None
    attendance: str | None
    grade: int | None
    mastery: str | None
    mastery_comment: str | None
    skills: list[str]
    notes: str | None
    missed_reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, lesson: Lesson) -> LessonOut:
        return cls.model_validate(lesson, from_attributes=True)


class LessonsOut(BaseModel):
    items: list[LessonOut]


class SeriesOut(BaseModel):
    id: uuid.UUID
    rule: str
    timezone: str
    lessons: list[LessonOut]


class LocalLessonOut(LessonOut):
    local_starts_at: datetime
    local_ends_at: datetime


class DayOut(BaseModel):
    date: date
    lessons: list[LocalLessonOut]


class ScheduleOut(BaseModel):
    view: Literal["day", "week"]
    timezone: str
    starts_at: datetime
    ends_at: datetime
    days: list[DayOut]


class PlanIn(_Strict):
    topics: list[Text500] = Field(max_length=500)

    @model_validator(mode="after")
    def _distinct(self) -> PlanIn:
        if len(set(self.topics)) != len(self.topics):
            raise ValueError("topics must be distinct")
        return self


class PlanTopicOut(BaseModel):
    id: uuid.UUID
    position: int
    title: str
    status: Literal["pending", "planned", "covered"]
    lesson_id: uuid.UUID | None


class PlanOut(BaseModel):
    student_id: uuid.UUID
    tutor_id: uuid.UUID
    topics: list[PlanTopicOut]


class FeedOut(BaseModel):
    url: str
    token: str
