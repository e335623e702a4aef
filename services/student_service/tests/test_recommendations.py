"""Recommendations: each rule as a pure function, shown firing and staying silent; then the endpoint
with the data learnt from homework, lesson and material events."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from services.student_service.domain.recommendations import (
    LastLesson,
    OpenHomework,
    SharedMaterial,
    StudentData,
    close_to_next_level,
    homework_due_soon,
    matches_topic,
    material_for_last_topic,
    recommend,
    streak_at_risk,
)
from services.student_service.tests.conftest import NOW, Events
from services.student_service.tests.test_awards import completed, linked
from shared.events.catalogue import (
    HomeworkAssigned,
    HomeworkSubmitted,
    MaterialShared,
    MaterialUploaded,
    MaterialViewed,
)
from shared.testing.service import People, Person

BASE = StudentData(xp=0, timezone="Europe/Moscow", current_streak=0)


def homework(due_in: timedelta, submitted: bool = False, title: str = "Fractions") -> OpenHomework:
    return OpenHomework(uuid.uuid4(), title, NOW + due_in, submitted)


# --- (a) homework due within 24 hours ------------------------------------------------------------


def test_homework_due_within_24_hours_and_not_handed_in_is_recommended() -> None:
    due = homework(timedelta(hours=5))
    data = StudentData(**{**BASE.__dict__, "homework": (due,)})
    [rec] = homework_due_soon(data, NOW)
    assert rec.code == "homework_due_soon" and rec.priority == 1
    assert rec.params == {
        "homework_id": str(due.homework_id),
        "title": "Fractions",
        "due_at": due.due_at.isoformat(),
        "hours_left": 5,
    }


def test_homework_handed_in_later_than_24_hours_or_overdue_is_not() -> None:
    data = StudentData(
        **{
            **BASE.__dict__,
            "homework": (
                homework(timedelta(hours=5), submitted=True),
                homework(timedelta(hours=24, minutes=1)),
                homework(-timedelta(minutes=1)),
            ),
        }
    )
    assert homework_due_soon(data, NOW) == []
    exactly_24 = StudentData(**{**BASE.__dict__, "homework": (homework(timedelta(hours=24)),)})
    assert len(homework_due_soon(exactly_24, NOW)) == 1


# --- (b) within 10% of the next level -----------------------------------------------------------


def test_close_to_the_next_level_fires_within_10_percent_of_the_span() -> None:
    # level 2 spans 100..282 (182 XP): 10% is 18.2, so 264 (18 short) fires, 263 (19 short) does not
    [rec] = close_to_next_level(StudentData(xp=264, timezone="UTC", current_streak=0), NOW)
    assert (rec.code, rec.params) == ("close_to_next_level", {"level": 2, "next_level": 3, "xp_needed": 18})
    assert close_to_next_level(StudentData(xp=263, timezone="UTC", current_streak=0), NOW) == []
    # level 1: 0..100, so 90 fires and 89 does not; a negative total is far from anything
    assert close_to_next_level(StudentData(xp=90, timezone="UTC", current_streak=0), NOW)
    assert close_to_next_level(StudentData(xp=89, timezone="UTC", current_streak=0), NOW) == []
    assert close_to_next_level(StudentData(xp=-50, timezone="UTC", current_streak=0), NOW) == []


# --- (c) a streak at risk in the evening ---------------------------------------------------------

MOSCOW_18_00 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # 18:00 in Moscow (UTC+3)


def streak_data(streak: int, days: set[date], timezone: str = "Europe/Moscow") -> StudentData:
    return StudentData(xp=0, timezone=timezone, current_streak=streak, study_days=frozenset(days))


def test_a_3_day_streak_without_study_today_after_18_local_is_at_risk() -> None:
    studied = {date(2026, 2, 27), date(2026, 2, 28), date(2026, 3, 1)}
    [rec] = streak_at_risk(streak_data(3, studied), MOSCOW_18_00)
    assert (rec.code, rec.params) == ("streak_at_risk", {"current_streak": 3, "local_date": "2026-03-02"})


def test_no_streak_warning_before_18_after_study_today_or_for_short_streaks() -> None:
    studied = {date(2026, 2, 27), date(2026, 2, 28), date(2026, 3, 1)}
    assert streak_at_risk(streak_data(3, studied), MOSCOW_18_00 - timedelta(minutes=1)) == []
    assert streak_at_risk(streak_data(4, studied | {date(2026, 3, 2)}), MOSCOW_18_00) == []
    assert streak_at_risk(streak_data(2, studied), MOSCOW_18_00) == []
    # 15:00 UTC is only 07:00 in Los Angeles: the student's own zone decides
    assert streak_at_risk(streak_data(3, studied, "America/Los_Angeles"), MOSCOW_18_00) == []


# --- (d) material for the last lesson's topic ---------------------------------------------------


def material(title: str, subject: str | None = "Maths", viewed: bool = False) -> SharedMaterial:
    return SharedMaterial(uuid.uuid4(), title, subject, viewed)


def test_topic_matching_is_every_topic_word_beginning_a_title_word_case_insensitively() -> None:
    topic = "Quadratic equations"
    assert matches_topic(topic, "Maths", material("QUADRATIC Equations — worksheet"))
    assert matches_topic("quadratic equation", "Maths", material("Solving quadratic equations"))
    assert not matches_topic(topic, "Maths", material("Linear equations"))
    assert not matches_topic(topic, "Maths", material("Quadratic equations", subject="Physics"))
    assert matches_topic(topic, "Maths", material("Quadratic equations", subject=None))  # a link without subject
    assert not matches_topic("of a", "Maths", material("A history of a"))  # no word long enough to mean much


def test_an_unviewed_shared_material_on_the_last_topic_is_recommended() -> None:
    lesson = LastLesson(uuid.uuid4(), "Maths", "Quadratic equations")
    wanted = material("Quadratic equations: practice")
    data = StudentData(
        **{
            **BASE.__dict__,
            "last_lesson": lesson,
            "materials": (wanted, material("Quadratic equations: notes", viewed=True), material("Fractions")),
        }
    )
    [rec] = material_for_last_topic(data, NOW)
    assert rec.code == "material_for_last_topic"
    assert rec.params == {
        "lesson_id": str(lesson.lesson_id),
        "topic": "Quadratic equations",
        "materials": [{"material_id": str(wanted.material_id), "title": "Quadratic equations: practice"}],
    }


def test_no_material_recommendation_without_a_topic_or_when_all_are_viewed() -> None:
    viewed = (material("Quadratic equations", viewed=True),)
    with_topic = LastLesson(uuid.uuid4(), "Maths", "Quadratic equations")
    assert (
        material_for_last_topic(StudentData(**{**BASE.__dict__, "last_lesson": with_topic, "materials": viewed}), NOW)
        == []
    )
    no_topic = LastLesson(uuid.uuid4(), "Maths", None)
    unviewed = (material("Quadratic equations"),)
    assert (
        material_for_last_topic(StudentData(**{**BASE.__dict__, "last_lesson": no_topic, "materials": unviewed}), NOW)
        == []
    )
    assert material_for_last_topic(StudentData(**{**BASE.__dict__, "materials": unviewed}), NOW) == []


def test_recommend_orders_by_priority() -> None:
    data = StudentData(
        xp=95,
        timezone="Europe/Moscow",
        current_streak=5,
        study_days=frozenset({date(2026, 3, 1)}),
        homework=(OpenHomework(uuid.uuid4(), "Fractions", MOSCOW_18_00 + timedelta(hours=2), False),),
    )
    assert [r.code for r in recommend(data, MOSCOW_18_00)] == [
        "homework_due_soon",
        "streak_at_risk",
        "close_to_next_level",
    ]
    assert recommend(BASE, NOW) == []


# --- through the events and the endpoint -------------------------------------------------------


def assigned(tutor: Person, student: Person, due_at: datetime, title: str) -> HomeworkAssigned:
    return HomeworkAssigned(
        homework_id=uuid.uuid4(),
        tutor_id=uuid.UUID(tutor.id),
        student_id=uuid.UUID(student.id),
        title=title,
        due_at=due_at,
    )


async def recommendations(
    client: httpx.AsyncClient, student: Person, viewer: Person | None = None
) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/students/{student.id}/recommendations", headers=(viewer or student).headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_the_endpoint_recommends_from_homework_lesson_and_material_events(
    client: httpx.AsyncClient, events: Events, people: People
) -> None:
    tutor, stranger = people.tutor(), people.tutor()
    student = people.student_of(tutor)
    parent = people.parent_of(student)
    await events.send(events.wrap(linked(tutor, student)))
    assert await recommendations(client, student) == []

    soon = assigned(tutor, student, NOW + timedelta(hours=3), "Fractions")
    handed_in = assigned(tutor, student, NOW + timedelta(hours=4), "Decimals")
    later = assigned(tutor, student, NOW + timedelta(days=3), "Percentages")
    # the hand-in arrives before its assignment: the order of events does not matter
    submission = HomeworkSubmitted(
        **handed_in.model_dump(), submission_id=uuid.uuid4(), submitted_at=NOW - timedelta(hours=1)
    )
    lesson = completed(tutor, student, grade=4).model_copy(update={"topic": "Quadratic equations"})
    topic_material, other_material, opened = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    tutor_id = uuid.UUID(tutor.id)
    sent = [
        events.wrap(submission),
        events.wrap(soon),
        events.wrap(handed_in),
        events.wrap(later),
        events.wrap(lesson),
        # shared before its upload event arrives; the upload adds the subject
        events.wrap(
            MaterialShared(
                material_id=topic_material,
                owner_id=tutor_id,
                title="Quadratic equations: practice",
                student_ids=[uuid.UUID(student.id)],
            )
        ),
        events.wrap(
            MaterialUploaded(
                material_id=topic_material,
                owner_id=tutor_id,
                owner_role="tutor",
                title="Quadratic equations: practice",
                filename="q.pdf",
                content_type="application/pdf",
                size=10,
                sha256="a" * 64,
                subject="Maths",
            )
        ),
        # shared with every student of the tutor, but already opened
        events.wrap(
            MaterialShared(
                material_id=opened,
                owner_id=tutor_id,
                title="Quadratic equations: notes",
                student_ids=[],
                all_students=True,
            )
        ),
        events.wrap(
            MaterialViewed(
                material_id=opened, owner_id=tutor_id, viewer_id=uuid.UUID(student.id), viewer_role="student"
            )
        ),
        # on the topic but shared with someone else
        events.wrap(
            MaterialShared(
                material_id=other_material,
                owner_id=tutor_id,
                title="Quadratic equations: test",
                student_ids=[uuid.uuid4()],
            )
        ),
    ]
    await events.send(*sent)

    items = await recommendations(client, student)
    assert [i["code"] for i in items] == ["homework_due_soon", "material_for_last_topic"], items
    assert items[0]["params"]["homework_id"] == str(soon.homework_id) and items[0]["params"]["hours_left"] == 3
    assert items[0]["message"]
    assert items[1]["params"]["materials"] == [
        {"material_id": str(topic_material), "title": "Quadratic equations: practice"}
    ]
    me = await client.get("/api/v1/students/me/recommendations", headers=student.headers)
    assert me.status_code == 200 and me.json()["items"] == items
    assert await recommendations(client, student, viewer=tutor) == items
    assert await recommendations(client, student, viewer=parent) == items
    response = await client.get(f"/api/v1/students/{student.id}/recommendations", headers=stranger.headers)
    assert response.status_code == 404
