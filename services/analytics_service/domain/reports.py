"""Reports from the read models, aggregated in SQL; dates are calendar days in the tutor's zone."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def timezone_of(session: AsyncSession, user_id: uuid.UUID, default: str) -> str:
    found = await session.scalar(text("SELECT timezone FROM users WHERE user_id = :u"), {"u": user_id})
    return found or default


def _bounds(start: date, end: date) -> dict[str, Any]:
    return {"start": start, "end": end + timedelta(days=1)}


async def income(
    session: AsyncSession, tutor_id: uuid.UUID, tz: str, start: date, end: date, group: str
) -> list[dict[str, Any]]:
    """Charges minus charges given back, per local day or month and currency (minor units)."""
    unit = "month" if group == "month" else "day"
    rows = await session.execute(
        text(
            f"""
            SELECT date_trunc('{unit}', occurred_at AT TIME ZONE :tz)::date AS period, currency,
                   sum(amount) FILTER (WHERE kind = 'charge') AS charged,
                   coalesce(sum(amount) FILTER (WHERE kind = 'charge_refund'), 0) AS refunded
            FROM money
            WHERE tutor_id = :tutor AND kind IN ('charge', 'charge_refund')
              AND (occurred_at AT TIME ZONE :tz) >= :start AND (occurred_at AT TIME ZONE :tz) < :end
            GROUP BY 1, 2 ORDER BY 1, 2
            """
        ),
        {"tutor": tutor_id, "tz": tz, **_bounds(start, end)},
    )
    return [
        {
            "period": r.period.isoformat(),
            "currency": r.currency,
            "charged": int(r.charged or 0),
            "refunded": int(r.refunded),
            "income": int(r.charged or 0) - int(r.refunded),
        }
        for r in rows
    ]


async def summary(session: AsyncSession, tutor_id: uuid.UUID, tz: str, start: date, end: date) -> dict[str, Any]:
    params = {"tutor": tutor_id, "tz": tz, **_bounds(start, end)}
    lessons = (
        await session.execute(
            text(
                """
                SELECT count(*) FILTER (WHERE status = 'completed') AS held,
                       count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
                       count(*) FILTER (WHERE status = 'missed') AS missed,
                       count(DISTINCT student_id) FILTER (WHERE status = 'completed') AS active_students
                FROM lessons
                WHERE tutor_id = :tutor
                  AND (starts_at AT TIME ZONE :tz) >= :start AND (starts_at AT TIME ZONE :tz) < :end
                """
            ),
            params,
        )
    ).one()
    homework = (
        await session.execute(
            text(
                """
                SELECT count(*) AS assigned, count(submitted_at) AS done,
                       avg(grade)::numeric(4, 2) AS average_grade
                FROM homework
                WHERE tutor_id = :tutor
                  AND (due_at AT TIME ZONE :tz) >= :start AND (due_at AT TIME ZONE :tz) < :end
                """
            ),
            params,
        )
    ).one()
    debts = await session.execute(
        text(
            "SELECT student_id, -balance AS debt, currency FROM balances "
            "WHERE tutor_id = :tutor AND balance < 0 ORDER BY student_id"
        ),
        {"tutor": tutor_id},
    )
    income_rows = await income(session, tutor_id, tz, start, end, "month")
    totals: dict[str, int] = {}
    for row in income_rows:
        totals[row["currency"]] = totals.get(row["currency"], 0) + row["income"]
    attended_base = lessons.held + lessons.missed
    return {
        "tutor_id": str(tutor_id),
        "timezone": tz,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "income": [{"currency": c, "amount": a} for c, a in sorted(totals.items())],
        "lessons": {"held": lessons.held, "cancelled": lessons.cancelled, "missed": lessons.missed},
        # held out of those that were due to happen (held or missed); cancelled ones do not count
        "attendance_rate": round(lessons.held / attended_base, 4) if attended_base else None,
        "active_students": lessons.active_students,
        "homework": {
            "assigned": homework.assigned,
            "completed": homework.done,
            "completion_rate": round(homework.done / homework.assigned, 4) if homework.assigned else None,
            "average_grade": str(homework.average_grade) if homework.average_grade is not None else None,
        },
        # the latest balance payment-service reported with each charge, refund or top-up
        "debts": [{"student_id": str(r.student_id), "amount": int(r.debt), "currency": r.currency} for r in debts],
    }


async def progress(
    session: AsyncSession, student_id: uuid.UUID, tz: str, start: date, end: date
) -> list[dict[str, Any]]:
    """Per local month: lessons held and missed, average lesson grade, topics mastered, homework."""
    params = {"student": student_id, "tz": tz, **_bounds(start, end)}
    rows = await session.execute(
        text(
            """
            WITH l AS (
                SELECT date_trunc('month', starts_at AT TIME ZONE :tz)::date AS period,
                       count(*) FILTER (WHERE status = 'completed') AS held,
                       count(*) FILTER (WHERE status = 'missed') AS missed,
                       avg(grade) FILTER (WHERE status = 'completed')::numeric(4, 2) AS lesson_grade,
                       count(*) FILTER (WHERE mastery = 'mastered') AS mastered
                FROM lessons WHERE student_id = :student
                  AND (starts_at AT TIME ZONE :tz) >= :start AND (starts_at AT TIME ZONE :tz) < :end
                GROUP BY 1
            ), h AS (
                SELECT date_trunc('month', due_at AT TIME ZONE :tz)::date AS period,
                       count(*) AS assigned, count(submitted_at) AS completed,
                       avg(grade)::numeric(4, 2) AS homework_grade
                FROM homework WHERE student_id = :student
                  AND (due_at AT TIME ZONE :tz) >= :start AND (due_at AT TIME ZONE :tz) < :end
                GROUP BY 1
            )
            SELECT coalesce(l.period, h.period) AS period, coalesce(held, 0) AS held, coalesce(missed, 0) AS missed,
                   lesson_grade, coalesce(mastered, 0) AS mastered, coalesce(assigned, 0) AS assigned,
                   coalesce(completed, 0) AS completed, homework_grade
            FROM l FULL JOIN h ON l.period = h.period ORDER BY 1
            """
        ),
        params,
    )

    def text_or_none(value: Any) -> str | None:
        return None if value is None else str(value)

    return [
        {
            "period": r.period.isoformat(),
            "lessons_held": r.held,
            "lessons_missed": r.missed,
            "average_lesson_grade": text_or_none(r.lesson_grade),
            "topics_mastered": r.mastered,
            "homework_assigned": r.assigned,
            "homework_completed": r.completed,
            "average_homework_grade": text_or_none(r.homework_grade),
        }
        for r in rows
    ]
