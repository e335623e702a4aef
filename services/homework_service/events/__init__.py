"""What homework-service publishes, built from an assignment and added to the outbox in the change's
transaction. It consumes nothing beyond the shared access-link events."""

from __future__ import annotations

from typing import Any

from services.homework_service.models import Homework, Submission
from shared.events import EventHandler
from shared.events.catalogue import HomeworkAssigned, HomeworkGraded, HomeworkOverdue, HomeworkSubmitted


def _fields(homework: Homework) -> dict[str, Any]:
    return {
        "homework_id": homework.id,
        "tutor_id": homework.tutor_id,
        "student_id": homework.student_id,
        "title": homework.title,
        "due_at": homework.due_at,
        "lesson_id": homework.lesson_id,
    }


def homework_assigned(homework: Homework) -> HomeworkAssigned:
    return HomeworkAssigned(**_fields(homework))


def homework_submitted(homework: Homework, submission: Submission) -> HomeworkSubmitted:
    return HomeworkSubmitted(
        **_fields(homework),
        submission_id=submission.id,
        submitted_at=submission.submitted_at,
        late=submission.late,
        material_ids=list(submission.material_ids),
    )


def homework_graded(homework: Homework, submission: Submission | None) -> HomeworkGraded:
    assert homework.grade is not None
    return HomeworkGraded(
        **_fields(homework), submission_id=submission.id if submission else None, grade=homework.grade
    )


def homework_overdue(homework: Homework) -> HomeworkOverdue:
    return HomeworkOverdue(**_fields(homework))


SUBSCRIPTIONS: dict[str, EventHandler] = {}
