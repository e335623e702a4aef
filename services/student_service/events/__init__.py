"""What student-service consumes: each event worth XP becomes one award keyed by its source (so a
redelivery, or the same source sent again under a new event id, awards nothing more). Handlers run in
the consumer's transaction together with the inbox row."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.student_service.domain import achievements, coursework, streaks, xp
from services.student_service.domain.profiles import (
    adopt_tutor,
    award,
    credit,
    ensure_profile,
    ledger_row,
    lock_profiles,
    record_awards,
)
from services.student_service.models import Profile, XpEntry
from shared.auth.access import on_student_linked as record_access_link
from shared.events import EventHandler
from shared.events.catalogue import (
    HomeworkAssigned,
    HomeworkGraded,
    HomeworkSubmitted,
    LessonCancelled,
    LessonCompleted,
    MaterialShared,
    MaterialUploaded,
    MaterialViewed,
    PaymentReceived,
    PaymentRefunded,
    StudentLinked,
    UserRegistered,
    UserUpdated,
    payload_as,
)
from shared.events.envelope import Envelope
from shared.events.handlers import batch_handler, handling


def _one_flush(handler: EventHandler) -> EventHandler:
    """Run ``handler`` without autoflush: what it changes on the profile is written in one UPDATE when the
    transaction commits, not before each further statement (none of them reads ``profiles`` back)."""

    @functools.wraps(handler)
    async def run(session: AsyncSession, envelope: Envelope) -> None:
        with session.no_autoflush:
            await handler(session, envelope)

    return run


async def on_student_linked(session: AsyncSession, envelope: Envelope) -> None:
    await record_access_link(session, envelope)
    link = payload_as(envelope, StudentLinked)
    if link.relation == "tutor":
        await ensure_profile(session, link.student_id, link.tutor_id)


@batch_handler
async def on_lesson_completed(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
    """Completed lessons, as many as the consumer has waiting, with one statement each for the profiles'
    locks, the achievement standings, the ledger rows, the study days read and written and the achievements
    unlocked (one at a time, a lesson costs each of them once): the event path's hot handler
    (docs/performance.md). The result is what applying them one at a time, in order, would leave: each
    lesson's part runs in turn on what the lessons before it left, in memory, under the profiles' locks."""
    with session.no_autoflush:
        lessons = [payload_as(envelope, LessonCompleted) for envelope in envelopes]
        # a profile created here takes the tutor of the student's first lesson, as one at a time would
        profiles = await lock_profiles(session, {lesson.student_id: lesson.tutor_id for lesson in reversed(lessons)})
        held = {lesson.student_id for lesson in lessons if lesson.attendance in HELD}
        known = await achievements.standings(session, held)  # before this batch's awards: each adds its own
        studied = await streaks.days_of(session, held)
        first_awards = {}  # source key → the lesson whose award it is (a lesson sent twice is awarded once)
        for envelope, lesson in zip(envelopes, lessons, strict=True):
            if lesson.attendance in HELD:
                first_awards.setdefault(f"lesson:{lesson.lesson_id}", (envelope, lesson))
        new_awards = await record_awards(
            session,
            [
                ledger_row(
                    student_id=lesson.student_id,
                    tutor_id=lesson.tutor_id,
                    amount=xp.lesson_xp(lesson.lesson_type, lesson.grade),
                    source="lesson",
                    grade=lesson.grade,
                    source_key=key,
                    source_event_id=envelope.event_id,
                    occurred_at=envelope.occurred_at,
                )
                for key, (envelope, lesson) in first_awards.items()
            ],
        )
        unlocked: list[dict[str, object]] = []
        new_days: list[dict[str, object]] = []
        for envelope, lesson in zip(envelopes, lessons, strict=True):
            profile = profiles[lesson.student_id]
            adopt_tutor(profile, lesson.tutor_id)
            coursework.record_last_lesson(profile, lesson)
            if lesson.attendance not in HELD:
                continue
            standing = known[lesson.student_id]
            with handling(envelope):
                key = f"lesson:{lesson.lesson_id}"
                if key in new_awards and first_awards[key][0] is envelope:
                    await credit(
                        session,
                        profile,
                        tutor_id=lesson.tutor_id,
                        amount=xp.lesson_xp(lesson.lesson_type, lesson.grade),
                        source="lesson",
                        source_event_id=envelope.event_id,
                        reason=None,
                    )
                    standing.count_award("lesson", lesson.grade)
                    unlocked += await achievements.announce_earned(session, profile, envelope.occurred_at, standing)
                # the event's day (its occurred_at, in the student's time zone) is a study day
                study, excused = studied[lesson.student_id]
                day = streaks.local_day(profile, envelope.occurred_at)
                if await streaks.note_study_day(session, profile, day, study, excused):
                    new_days.append({"student_id": lesson.student_id, "day": day})
                    unlocked += await achievements.announce_earned(session, profile, envelope.occurred_at, standing)
        if new_days:
            await streaks.insert_study_days(session, new_days)
        if unlocked:
            await achievements.insert_unlocked(session, unlocked)


HELD = ("present", "late")  # a lesson attended: XP and a study day


@_one_flush
async def on_homework_graded(session: AsyncSession, envelope: Envelope) -> None:
    homework = payload_as(envelope, HomeworkGraded)
    await coursework.record_homework(
        session, **homework.model_dump(include=_HOMEWORK_FIELDS), graded_at=envelope.occurred_at
    )
    await award(
        session,
        ledger_row(
            student_id=homework.student_id,
            tutor_id=homework.tutor_id,
            amount=xp.homework_xp(homework.grade),
            source="homework",
            grade=homework.grade,
            source_key=f"homework:{homework.homework_id}",
            source_event_id=envelope.event_id,
            occurred_at=envelope.occurred_at,
        ),
    )


@_one_flush
async def on_material_viewed(session: AsyncSession, envelope: Envelope) -> None:
    viewed = payload_as(envelope, MaterialViewed)
    if viewed.viewer_role != "student":
        return
    profile = await ensure_profile(session, viewed.viewer_id, None)
    known = await award(
        session,
        ledger_row(
            student_id=viewed.viewer_id,
            tutor_id=None,
            amount=xp.MATERIAL_VIEWED_XP,
            source="material",
            source_key=f"material:{viewed.material_id}:{viewed.viewer_id}",
            source_event_id=envelope.event_id,
            occurred_at=envelope.occurred_at,
        ),
        profile=profile,
    )
    await _study_day(session, profile, envelope, known)


async def _study_day(
    session: AsyncSession, profile: Profile, envelope: Envelope, known: achievements.Standing | None = None
) -> None:
    """The event's day (its occurred_at, in the student's time zone) is a study day; late events count
    for their own day. ``profile``: locked by ``ensure_profile``; ``known``: the achievement standing an
    award in this transaction left (the ledger unchanged since), if any."""
    if await streaks.record_study_day(session, profile, envelope.occurred_at):
        await achievements.unlock_earned(session, profile, envelope.occurred_at, known)


_HOMEWORK_FIELDS = {"homework_id", "student_id", "tutor_id", "title", "due_at"}


async def on_homework_assigned(session: AsyncSession, envelope: Envelope) -> None:
    assigned = payload_as(envelope, HomeworkAssigned)
    await coursework.record_homework(session, **assigned.model_dump(include=_HOMEWORK_FIELDS))


@_one_flush
async def on_homework_submitted(session: AsyncSession, envelope: Envelope) -> None:
    submitted = payload_as(envelope, HomeworkSubmitted)
    await coursework.record_homework(
        session, **submitted.model_dump(include=_HOMEWORK_FIELDS), submitted_at=submitted.submitted_at
    )
    await _study_day(session, await ensure_profile(session, submitted.student_id, submitted.tutor_id), envelope)


async def on_lesson_cancelled(session: AsyncSession, envelope: Envelope) -> None:
    """A lesson the tutor cancelled excuses its day: it does not break the streak."""
    cancelled = payload_as(envelope, LessonCancelled)
    if cancelled.cancelled_by_role != "tutor":
        return
    profile = await ensure_profile(session, cancelled.student_id, cancelled.tutor_id)
    await streaks.record_excused_day(session, profile, cancelled.starts_at)


async def on_user_registered(session: AsyncSession, envelope: Envelope) -> None:
    """A student's time zone decides their study days."""
    user = payload_as(envelope, UserRegistered)
    if user.role == "student":
        profile = await ensure_profile(session, user.user_id, user.tutor_id)
        profile.timezone, profile.full_name = user.timezone, user.full_name


async def on_user_updated(session: AsyncSession, envelope: Envelope) -> None:
    user = payload_as(envelope, UserUpdated)
    profile = await session.get(Profile, user.user_id, with_for_update=True)
    if profile is not None:
        profile.timezone, profile.full_name = user.timezone, user.full_name


async def on_material_uploaded(session: AsyncSession, envelope: Envelope) -> None:
    """A tutor's material: its title and subject (a student's homework file is nothing to recommend)."""
    material = payload_as(envelope, MaterialUploaded)
    if material.owner_role == "tutor":
        await coursework.record_material(
            session,
            material_id=material.material_id,
            owner_id=material.owner_id,
            title=material.title,
            subject=material.subject,
        )


async def on_material_shared(session: AsyncSession, envelope: Envelope) -> None:
    shared = payload_as(envelope, MaterialShared)
    await coursework.record_material(
        session,
        material_id=shared.material_id,
        owner_id=shared.owner_id,
        title=shared.title,
        all_students=shared.all_students,
    )
    await coursework.record_shares(session, shared.material_id, shared.student_ids)


@_one_flush
async def on_payment_received(session: AsyncSession, envelope: Envelope) -> None:
    payment = payload_as(envelope, PaymentReceived)
    amount = xp.top_up_xp(payment.lessons_covered)
    if amount == 0:
        return
    await award(
        session,
        ledger_row(
            student_id=payment.student_id,
            tutor_id=payment.tutor_id,
            amount=amount,
            source="top_up",
            source_key=f"top_up:{payment.payment_id}",
            source_event_id=envelope.event_id,
            occurred_at=envelope.occurred_at,
        ),
    )


@_one_flush
async def on_payment_refunded(session: AsyncSession, envelope: Envelope) -> None:
    """A refunded top-up takes back exactly the XP it earned (nothing if it earned none)."""
    refund = payload_as(envelope, PaymentRefunded)
    if refund.payment_id is None:
        return
    earned = (
        await session.execute(select(XpEntry.amount).where(XpEntry.source_key == f"top_up:{refund.payment_id}"))
    ).scalar_one_or_none()
    if not earned:
        return
    await award(
        session,
        ledger_row(
            student_id=refund.student_id,
            tutor_id=refund.tutor_id,
            amount=-earned,
            source="top_up_reversal",
            source_key=f"top_up_reversal:{refund.payment_id}",
            source_event_id=envelope.event_id,
            occurred_at=envelope.occurred_at,
        ),
    )


SUBSCRIPTIONS: dict[str, EventHandler] = {
    StudentLinked.event_type: on_student_linked,
    LessonCompleted.event_type: on_lesson_completed,
    HomeworkGraded.event_type: on_homework_graded,
    MaterialViewed.event_type: on_material_viewed,
    HomeworkAssigned.event_type: on_homework_assigned,
    HomeworkSubmitted.event_type: on_homework_submitted,
    MaterialUploaded.event_type: on_material_uploaded,
    MaterialShared.event_type: on_material_shared,
    LessonCancelled.event_type: on_lesson_cancelled,
    UserRegistered.event_type: on_user_registered,
    UserUpdated.event_type: on_user_updated,
    PaymentReceived.event_type: on_payment_received,
    PaymentRefunded.event_type: on_payment_refunded,
}
