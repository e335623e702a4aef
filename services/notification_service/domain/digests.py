"""The weekly summary (each parent, per child: Monday 09:00 in the parent's zone, the previous Monday–Sunday)
and the monthly report (per student, to their parents or, without one, the student: the 1st at 09:00, the
previous month), built from the facts the service keeps (``domain.facts``).

"What is due at ``now``": ``emit_digests(db, now)``. Each (kind, recipient, student, period) is a ``digests``
row under a unique key, inserted in the transaction that adds the notification, so it is sent once with any
number of schedulers and across restarts. A digest is due for a day after its time (``GRACE``); a scheduler
that was down longer skips it rather than send last week's news on Friday (and a first deployment sends no
old periods). A period in which nothing happened is recorded and not sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notification_service.domain.delivery import notify, recipients_by_id, zone_of
from services.notification_service.models import Digest, HomeworkFact, LessonOutcome, PaymentFact, Recipient
from shared.db import Database
from shared.tables import access_links

SEND_AT = time(9, 0)  # local time of the recipient
GRACE = timedelta(days=1)
TEMPLATES = {"weekly": "weekly_summary", "monthly": "monthly_report"}


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # exclusive

    def bounds(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        return (
            datetime.combine(self.start, time(0), tzinfo=zone).astimezone(UTC),
            datetime.combine(self.end, time(0), tzinfo=zone).astimezone(UTC),
        )


def _due(send_on: date, zone: ZoneInfo, local: datetime) -> bool:
    send_at = datetime.combine(send_on, SEND_AT, tzinfo=zone)
    return send_at <= local < send_at + GRACE


def weekly_period(now: datetime, zone: ZoneInfo) -> Period | None:
    """The week before this Monday, once it is Monday 09:00 in ``zone`` (for a day)."""
    local = now.astimezone(zone)
    monday = local.date() - timedelta(days=local.weekday())
    return Period(monday - timedelta(days=7), monday) if _due(monday, zone, local) else None


def monthly_period(now: datetime, zone: ZoneInfo) -> Period | None:
    """The month before this one, once it is the 1st at 09:00 in ``zone`` (for a day)."""
    local = now.astimezone(zone)
    first = local.date().replace(day=1)
    previous = (first - timedelta(days=1)).replace(day=1)
    return Period(previous, first) if _due(first, zone, local) else None


PERIODS: dict[str, Callable[[datetime, ZoneInfo], Period | None]] = {"weekly": weekly_period, "monthly": monthly_period}


async def _recipients(session: AsyncSession) -> list[tuple[str, uuid.UUID, uuid.UUID]]:
    """(kind, recipient, student): each parent per child weekly; monthly each student's parents, or the
    student without one."""
    links = (
        await session.execute(
            select(access_links.c.principal_id, access_links.c.student_id, access_links.c.relation).where(
                access_links.c.active == 1
            )
        )
    ).all()
    parents: dict[uuid.UUID, list[uuid.UUID]] = {}
    students: set[uuid.UUID] = set()
    for principal, student, relation in links:
        students.add(student)
        if relation == "parent":
            parents.setdefault(student, []).append(principal)
    pairs = [("weekly", parent, student) for student, ps in parents.items() for parent in ps]
    pairs += [("monthly", user, student) for student in students for user in parents.get(student, [student])]
    return pairs


async def summary(session: AsyncSession, student_id: uuid.UUID, start: datetime, end: datetime) -> dict[str, Any]:
    """What happened to the student in [start, end): lessons with attendance, grade and mastery; homework
    assigned, handed in and graded; top-ups per currency."""
    lessons = list(
        await session.scalars(
            select(LessonOutcome)
            .where(
                LessonOutcome.student_id == student_id, LessonOutcome.starts_at >= start, LessonOutcome.starts_at < end
            )
            .order_by(LessonOutcome.starts_at)
        )
    )
    homework = list(await session.scalars(select(HomeworkFact).where(HomeworkFact.student_id == student_id)))

    def within(moment: datetime | None) -> bool:
        return moment is not None and start <= moment < end

    graded = [h.grade for h in homework if within(h.graded_at) and h.grade is not None]
    payments = (
        await session.execute(
            select(PaymentFact.currency, func.sum(PaymentFact.amount), func.count())
            .where(
                PaymentFact.student_id == student_id, PaymentFact.received_at >= start, PaymentFact.received_at < end
            )
            .group_by(PaymentFact.currency)
            .order_by(PaymentFact.currency)
        )
    ).all()
    grades = [x.grade for x in lessons if x.grade is not None]
    return {
        "lessons": [
            {
                "lesson_id": x.lesson_id,
                "starts_at": x.starts_at,
                "subject": x.subject,
                "topic": x.topic,
                "attendance": x.attendance,
                "grade": x.grade,
                "mastery": x.mastery,
            }
            for x in lessons
        ],
        "lessons_attended": sum(1 for x in lessons if x.attendance != "absent"),
        "lessons_missed": sum(1 for x in lessons if x.attendance == "absent"),
        "average_lesson_grade": round(sum(grades) / len(grades), 2) if grades else None,
        "homework": {
            "assigned": sum(1 for h in homework if within(h.assigned_at)),
            "submitted": sum(1 for h in homework if within(h.submitted_at)),
            "graded": len(graded),
            "average_grade": round(sum(graded) / len(graded), 2) if graded else None,
            "open": sum(
                1
                for h in homework
                if h.submitted_at is None and h.graded_at is None and h.assigned_at is not None and h.assigned_at < end
            ),
        },
        "payments": [{"currency": c, "amount": int(total), "count": n} for c, total, n in payments],
    }


def _empty(facts: dict[str, Any]) -> bool:
    activity = facts["homework"]
    return not (
        facts["lessons"] or facts["payments"] or activity["assigned"] or activity["submitted"] or activity["graded"]
    )


async def emit_digests(database: Database, now: datetime) -> list[uuid.UUID]:
    """Send the digests due at ``now``; returns the ids of the ``digests`` rows this pass created."""
    async with database.transaction() as session:
        pairs = await _recipients(session)
        recipients = await recipients_by_id(session, (user for _, user, _ in pairs))
        due: list[tuple[str, uuid.UUID, uuid.UUID, Period, ZoneInfo]] = []
        for kind, user, student in pairs:
            zone = zone_of(recipients.get(user))
            period = PERIODS[kind](now, zone)
            if period is not None:
                due.append((kind, user, student, period, zone))
        if not due:
            return []
        done = {
            (d.kind, d.user_id, d.student_id, d.period_start)
            for d in await session.scalars(
                select(Digest).where(Digest.period_start.in_({period.start for *_, period, _ in due}))
            )
        }
    created: list[uuid.UUID] = []
    for kind, user, student, period, zone in due:
        if (kind, user, student, period.start) in done:
            continue
        async with database.transaction() as session:
            digest_id = await _send(session, kind, user, student, period, zone, now)
        if digest_id is not None:
            created.append(digest_id)
    return created


async def _send(
    session: AsyncSession,
    kind: str,
    user_id: uuid.UUID,
    student_id: uuid.UUID,
    period: Period,
    zone: ZoneInfo,
    now: datetime,
) -> uuid.UUID | None:
    digest_id = await session.scalar(
        insert(Digest)
        .values(
            id=uuid.uuid4(),
            kind=kind,
            user_id=user_id,
            student_id=student_id,
            period_start=period.start,
            period_end=period.end,
        )
        .on_conflict_do_nothing(constraint="uq_digests_period")
        .returning(Digest.id)
    )
    if digest_id is None:  # another scheduler took it
        return None
    facts = await summary(session, student_id, *period.bounds(zone))
    if _empty(facts):
        return digest_id
    template = TEMPLATES[kind]
    delivery_id = await notify(
        session,
        user_id,
        kind=template,
        template=template,
        params={
            "student_id": student_id,
            "student_name": await session.scalar(select(Recipient.full_name).where(Recipient.user_id == student_id)),
            "period_start": period.start,
            "period_end": period.end - timedelta(days=1),  # the last day, inclusive
            "for_parent": user_id != student_id,
            **facts,
        },
        dedup_key=f"{template}:{user_id}:{student_id}:{period.start.isoformat()}",
        now=now,
    )
    await session.execute(update(Digest).where(Digest.id == digest_id).values(delivery_id=delivery_id))
    return digest_id
