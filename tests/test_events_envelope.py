"""The envelope and the catalogue: wire format, versions, and one model per event type of DESIGN.md §5."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from pydantic import ValidationError

from shared.events.catalogue import (
    EVENT_CATALOGUE,
    PAYLOAD_VERSIONS,
    LessonCompleted,
    LessonScheduled,
    PaymentReceived,
    StudentLinked,
    UnknownEvent,
    UserRegistered,
    parse_payload,
    payload_as,
)
from shared.events.envelope import Envelope

DESIGN_CATALOGUE = """
user.registered user.updated student.linked student.unlinked lesson.scheduled lesson.rescheduled
lesson.cancelled lesson.completed lesson.missed homework.assigned homework.submitted homework.graded
homework.overdue payment.received payment.charged payment.refunded balance.low material.uploaded
material.shared material.viewed student.xp_awarded student.level_up student.achievement_unlocked
student.streak_updated notification.requested notification.delivered notification.failed
""".split()

STARTS = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _lesson_fields() -> dict[str, object]:
    return {
        "lesson_id": uuid.uuid4(),
        "tutor_id": uuid.uuid4(),
        "student_id": uuid.uuid4(),
        "starts_at": STARTS,
        "ends_at": STARTS + timedelta(minutes=60),
        "subject": "Maths",
    }


def test_every_event_type_of_the_design_has_a_model_and_nothing_else_sneaks_in() -> None:
    assert sorted(EVENT_CATALOGUE) == sorted(DESIGN_CATALOGUE)
    for event_type, model in EVENT_CATALOGUE.items():
        assert model.event_type == event_type
        assert PAYLOAD_VERSIONS[(event_type, model.version)] is model


def test_envelope_round_trips_through_json_with_utc_times() -> None:
    moscow = timezone(timedelta(hours=3))
    payload = LessonCompleted(**_lesson_fields(), grade=5, mastery="mastered", topic="Fractions")
    envelope = Envelope.wrap(
        payload,
        producer="lesson-service",
        correlation_id="cid-1",
        causation_id="cause-1",
        occurred_at=datetime(2026, 3, 2, 19, 0, tzinfo=moscow),
    )
    wire = envelope.to_json()
    raw = orjson.loads(wire)
    assert set(raw) == {
        "event_id", "event_type", "version", "occurred_at", "producer", "correlation_id", "causation_id", "payload",
    }  # fmt: skip
    assert raw["event_type"] == "lesson.completed" and raw["version"] == 1

    parsed = Envelope.from_json(wire)
    assert parsed == envelope
    assert parsed.occurred_at == datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
    assert parsed.occurred_at.utcoffset() == timedelta(0)
    assert payload_as(parsed, LessonCompleted) == payload
    assert parse_payload(parsed) == payload


def test_naive_times_and_garbage_are_refused() -> None:
    envelope = Envelope.wrap(
        StudentLinked(student_id=uuid.uuid4(), principal_id=uuid.uuid4(), relation="tutor", tutor_id=uuid.uuid4()),
        producer="user-service",
        correlation_id="c",
    )
    raw = envelope.to_dict()
    raw["occurred_at"] = "2026-03-02T15:00:00"  # no offset
    with pytest.raises(ValidationError):
        Envelope.model_validate(raw)
    with pytest.raises(ValueError):
        Envelope.from_json(b"{not json")
    with pytest.raises(ValueError):
        Envelope.from_json(b'{"event_type": "user.registered"}')


def test_money_is_minor_units_with_a_currency() -> None:
    common = {"student_id": uuid.uuid4(), "tutor_id": uuid.uuid4(), "payment_id": uuid.uuid4(), "method": "card"}
    top_up = PaymentReceived(**common, amount=250_000, currency="RUB", balance_after=250_000)
    assert top_up.model_dump(mode="json")["amount"] == 250_000
    with pytest.raises(ValidationError):
        PaymentReceived(**common, amount=2500.50, currency="RUB", balance_after=0)
    with pytest.raises(ValidationError):
        PaymentReceived(**common, amount=100, currency="rubles", balance_after=0)
    with pytest.raises(ValidationError):
        LessonScheduled(**_lesson_fields(), price=150_000)  # a price without its currency
    assert LessonScheduled(**_lesson_fields(), price=150_000, currency="RUB").chargeable


def test_payloads_ignore_fields_added_by_newer_producers() -> None:
    user = {
        "user_id": str(uuid.uuid4()), "role": "student", "full_name": "Ann", "timezone": "Europe/Moscow",
        "language": "ru", "added_later": {"x": 1},
    }  # fmt: skip
    assert UserRegistered.model_validate(user).full_name == "Ann"


def test_unknown_types_and_versions_are_named() -> None:
    envelope = Envelope.wrap(LessonScheduled(**_lesson_fields()), producer="lesson-service", correlation_id="c")
    with pytest.raises(UnknownEvent, match="lesson.scheduled v9"):
        parse_payload(envelope.model_copy(update={"version": 9}))
    with pytest.raises(UnknownEvent):
        payload_as(envelope, LessonCompleted)
