"""The event catalogue: one versioned payload model per event type (DESIGN.md §5).

Producers and consumers import the same models. Rules for changing them:

- adding an optional field (with a default) is compatible: old consumers ignore
  it (payloads accept unknown fields), new consumers read the default from old
  events;
- renaming, removing or changing the meaning of a field is a new version: add a
  new model with ``version = 2``, keep the old one registered until no producer
  emits it, and point ``EVENT_CATALOGUE`` at the newest.

Conventions: ids are UUIDs, times timezone-aware UTC, money integer minor units
plus an ISO 4217 currency, never floats.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared.events.envelope import Envelope

# --- shared field types --------------------------------------------------------

MinorUnits = Annotated[int, Field(description="money in minor units (kopecks, cents)")]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
UtcDatetime = AwareDatetime
Grade = Annotated[int, Field(ge=1, le=5)]
Role = Literal["tutor", "student", "parent", "admin"]
LinkRelation = Literal["tutor", "parent"]
LessonType = Literal["regular", "trial", "exam_prep"]
Attendance = Literal["present", "late", "absent"]
Mastery = Literal["not_learned", "learned", "mastered"]  # DESIGN.md: topic mastery
Rarity = Literal["common", "rare", "epic", "legendary"]


class EventPayload(BaseModel):
    """Base of every payload: ``event_type`` and ``version`` identify the model on the wire."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]
    version: ClassVar[int] = 1


# --- users and links (field lists pinned in docs/CONTRACTS.md) -------------------


class UserRegistered(EventPayload):
    event_type: ClassVar[str] = "user.registered"

    user_id: uuid.UUID
    role: Role
    full_name: str
    email: str | None = None
    timezone: str
    language: str
    telegram_id: int | None = None
    tutor_id: uuid.UUID | None = None  # the inviting tutor, for a student or parent


class UserUpdated(EventPayload):
    event_type: ClassVar[str] = "user.updated"

    user_id: uuid.UUID
    full_name: str
    timezone: str
    language: str
    telegram_id: int | None = None


class _StudentLink(EventPayload):
    student_id: uuid.UUID
    principal_id: uuid.UUID  # the tutor or the parent who may see the student
    relation: LinkRelation
    tutor_id: uuid.UUID  # the student's tutor (for a parent link, the tutor who invited the parent)


class StudentLinked(_StudentLink):
    event_type: ClassVar[str] = "student.linked"


class StudentUnlinked(_StudentLink):
    event_type: ClassVar[str] = "student.unlinked"


# --- lessons -------------------------------------------------------------------------


class _Lesson(EventPayload):
    """What every lesson event carries, so consumers never call lesson-service back."""

    lesson_id: uuid.UUID
    tutor_id: uuid.UUID
    student_id: uuid.UUID
    starts_at: UtcDatetime
    ends_at: UtcDatetime
    subject: str
    topic: str | None = None
    lesson_type: LessonType = "regular"
    series_id: uuid.UUID | None = None  # set for a lesson of a recurring series
    price: MinorUnits | None = None  # the lesson's own price override; None: payment-service's price applies
    currency: Currency | None = None  # required with a price
    chargeable: bool = True  # whether payment-service charges for it

    @model_validator(mode="after")
    def _price_needs_currency(self) -> _Lesson:
        if self.price is not None and self.currency is None:
            raise ValueError("a lesson price needs its currency")
        if self.ends_at <= self.starts_at:
            raise ValueError("a lesson must end after it starts")
        return self


class LessonScheduled(_Lesson):
    event_type: ClassVar[str] = "lesson.scheduled"


class LessonRescheduled(_Lesson):
    event_type: ClassVar[str] = "lesson.rescheduled"

    previous_starts_at: UtcDatetime
    previous_ends_at: UtcDatetime


class LessonCancelled(_Lesson):
    event_type: ClassVar[str] = "lesson.cancelled"

    cancelled_by: uuid.UUID
    cancelled_by_role: Role  # a day whose lesson the tutor cancelled does not break a streak
    reason: str | None = None
    # chargeable (inherited): a late cancellation the tutor decided to charge
    # set when the tutor later excuses a chargeable cancellation: the event is sent again with
    # chargeable false, and a consumer that charged the first one refunds (the latest occurred_at wins)
    excused_by: uuid.UUID | None = None


class LessonCompleted(_Lesson):
    event_type: ClassVar[str] = "lesson.completed"

    attendance: Attendance = "present"
    grade: Grade | None = None
    mastery: Mastery | None = None  # the tutor's judgement of the lesson's topic
    mastery_comment: str | None = None
    skills: list[str] = Field(default_factory=list)  # skills practised
    notes: str | None = None


class LessonMissed(_Lesson):
    event_type: ClassVar[str] = "lesson.missed"

    attendance: Attendance = "absent"
    reason: str | None = None


# --- homework --------------------------------------------------------------------------


class _Homework(EventPayload):
    homework_id: uuid.UUID
    tutor_id: uuid.UUID
    student_id: uuid.UUID
    title: str
    due_at: UtcDatetime
    lesson_id: uuid.UUID | None = None


class HomeworkAssigned(_Homework):
    event_type: ClassVar[str] = "homework.assigned"


class HomeworkSubmitted(_Homework):
    event_type: ClassVar[str] = "homework.submitted"

    submission_id: uuid.UUID
    submitted_at: UtcDatetime
    late: bool = False
    material_ids: list[uuid.UUID] = Field(default_factory=list)


class HomeworkGraded(_Homework):
    event_type: ClassVar[str] = "homework.graded"

    submission_id: uuid.UUID | None = None
    grade: Grade


class HomeworkOverdue(_Homework):
    event_type: ClassVar[str] = "homework.overdue"


# --- payments ---------------------------------------------------------------------------


class _Money(EventPayload):
    student_id: uuid.UUID
    tutor_id: uuid.UUID
    amount: MinorUnits = Field(gt=0)
    currency: Currency
    balance_after: MinorUnits  # the student's balance with this tutor once the entry is applied


class PaymentReceived(_Money):
    """A top-up."""

    event_type: ClassVar[str] = "payment.received"

    payment_id: uuid.UUID
    method: str
    lessons_covered: int = Field(default=0, ge=0)  # future scheduled lessons this top-up pays for (XP)


class PaymentCharged(_Money):
    event_type: ClassVar[str] = "payment.charged"

    charge_id: uuid.UUID
    lesson_id: uuid.UUID | None = None
    reason: str | None = None


class PaymentRefunded(_Money):
    event_type: ClassVar[str] = "payment.refunded"

    refund_id: uuid.UUID
    payment_id: uuid.UUID | None = None  # the top-up being refunded (its XP is reversed)
    charge_id: uuid.UUID | None = None  # or the charge being refunded
    reason: str | None = None


class BalanceLow(EventPayload):
    event_type: ClassVar[str] = "balance.low"

    student_id: uuid.UUID
    tutor_id: uuid.UUID
    balance: MinorUnits
    currency: Currency
    lessons_covered: int = Field(ge=0)
    covered_until: UtcDatetime | None = None


# --- materials ---------------------------------------------------------------------------


class MaterialUploaded(EventPayload):
    event_type: ClassVar[str] = "material.uploaded"

    material_id: uuid.UUID
    owner_id: uuid.UUID
    owner_role: Role
    title: str
    filename: str
    content_type: str
    size: int = Field(ge=0)
    sha256: str  # "" for a link
    homework_id: uuid.UUID | None = None  # a student's homework file
    url: str | None = None  # a link (no file: filename and sha256 "", size 0)
    subject: str | None = None
    grade: int | None = Field(None, ge=1, le=11)


class MaterialShared(EventPayload):
    event_type: ClassVar[str] = "material.shared"

    material_id: uuid.UUID
    owner_id: uuid.UUID
    title: str
    student_ids: list[uuid.UUID]  # the students newly given access by this share
    all_students: bool = False  # shared with every student of the tutor, present and future


class MaterialViewed(EventPayload):
    event_type: ClassVar[str] = "material.viewed"

    material_id: uuid.UUID
    owner_id: uuid.UUID
    viewer_id: uuid.UUID
    viewer_role: Role


# --- the game layer ------------------------------------------------------------------------

XpSource = Literal["lesson", "homework", "material", "top_up", "top_up_reversal", "bonus", "correction"]


class StudentXpAwarded(EventPayload):
    event_type: ClassVar[str] = "student.xp_awarded"

    student_id: uuid.UUID
    tutor_id: uuid.UUID | None = None
    amount: int  # negative for a reversal or a correction
    source: XpSource
    source_event_id: uuid.UUID | None = None  # the event that earned it; None for a tutor's bonus
    reason: str | None = None
    total_xp: int


class StudentLevelUp(EventPayload):
    event_type: ClassVar[str] = "student.level_up"

    student_id: uuid.UUID
    tutor_id: uuid.UUID | None = None
    previous_level: int = Field(ge=1)
    level: int = Field(ge=1)
    total_xp: int


class StudentAchievementUnlocked(EventPayload):
    event_type: ClassVar[str] = "student.achievement_unlocked"

    student_id: uuid.UUID
    tutor_id: uuid.UUID | None = None
    code: str
    rarity: Rarity


class StudentStreakUpdated(EventPayload):
    event_type: ClassVar[str] = "student.streak_updated"

    student_id: uuid.UUID
    tutor_id: uuid.UUID | None = None
    study_day: date  # the calendar day in the student's time zone
    current_streak: int = Field(ge=0)
    longest_streak: int = Field(ge=0)
    freezes_held: int = Field(ge=0)
    freeze_used: bool = False


# --- notifications ---------------------------------------------------------------------------


class NotificationButton(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    label: str  # a key of the bot's message catalogue, rendered in the user's language
    callback_data: str | None = None
    url: str | None = None


class NotificationRequested(EventPayload):
    event_type: ClassVar[str] = "notification.requested"

    notification_id: uuid.UUID
    user_id: uuid.UUID
    chat_id: int | None = None  # None: the bot looks the chat up by user
    template: str  # a key of the bot's message catalogue
    params: dict[str, Any] = Field(default_factory=dict)
    buttons: list[NotificationButton] = Field(default_factory=list)
    dedup_key: str | None = None  # the same key is delivered once


class NotificationDelivered(EventPayload):
    event_type: ClassVar[str] = "notification.delivered"

    notification_id: uuid.UUID
    user_id: uuid.UUID
    chat_id: int
    telegram_message_id: int | None = None
    dedup_key: str | None = None


class NotificationFailed(EventPayload):
    event_type: ClassVar[str] = "notification.failed"

    notification_id: uuid.UUID
    user_id: uuid.UUID
    chat_id: int | None = None
    reason: str
    permanent: bool = False  # e.g. the user blocked the bot: retrying will not help
    dedup_key: str | None = None


# --- the catalogue ------------------------------------------------------------------------------

_ALL_PAYLOADS: tuple[type[EventPayload], ...] = (
    UserRegistered,
    UserUpdated,
    StudentLinked,
    StudentUnlinked,
    LessonScheduled,
    LessonRescheduled,
    LessonCancelled,
    LessonCompleted,
    LessonMissed,
    HomeworkAssigned,
    HomeworkSubmitted,
    HomeworkGraded,
    HomeworkOverdue,
    PaymentReceived,
    PaymentCharged,
    PaymentRefunded,
    BalanceLow,
    MaterialUploaded,
    MaterialShared,
    MaterialViewed,
    StudentXpAwarded,
    StudentLevelUp,
    StudentAchievementUnlocked,
    StudentStreakUpdated,
    NotificationRequested,
    NotificationDelivered,
    NotificationFailed,
)

# Every (type, version) a consumer can read; older versions stay here while producers still emit them.
PAYLOAD_VERSIONS: dict[tuple[str, int], type[EventPayload]] = {
    (model.event_type, model.version): model for model in _ALL_PAYLOADS
}

# Event type -> the model producers emit now (the newest version).
EVENT_CATALOGUE: dict[str, type[EventPayload]] = {}
for _model in _ALL_PAYLOADS:
    _current = EVENT_CATALOGUE.get(_model.event_type)
    if _current is None or _model.version > _current.version:
        EVENT_CATALOGUE[_model.event_type] = _model


class UnknownEvent(LookupError):
    """No payload model for this event type and version."""


def payload_model(event_type: str, version: int) -> type[EventPayload]:
    try:
        return PAYLOAD_VERSIONS[(event_type, version)]
    except KeyError:
        raise UnknownEvent(f"no payload model for {event_type} v{version}") from None


P = TypeVar("P", bound=EventPayload)


def parse_payload(envelope: Envelope) -> EventPayload:
    """The envelope's payload as its catalogue model (raises ``UnknownEvent`` or ``ValidationError``)."""
    return payload_model(envelope.event_type, envelope.version).model_validate(envelope.payload)


def payload_as(envelope: Envelope, model: type[P]) -> P:
    """The payload as the model a handler expects, typed: ``payload_as(event, LessonCompleted)``."""
    if (envelope.event_type, envelope.version) != (model.event_type, model.version):
        raise UnknownEvent(
            f"{model.__name__} reads {model.event_type} v{model.version}, not {envelope.event_type} v{envelope.version}"
        )
    return model.model_validate(envelope.payload)
