"""The API over events that came through the broker: who sees what (404 otherwise), the tutor's
time zone deciding the day, CSV export, the business metrics, and ``cli rebuild``."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from services.analytics_service import cli
from services.analytics_service.tests.conftest import publish_and_wait, read_models
from services.analytics_service.tests.scenario import PRICE, practice
from shared.events.catalogue import PaymentCharged, PaymentRefunded, UserRegistered
from shared.events.envelope import Envelope
from shared.testing.service import People


def wrap(payload: object, at: datetime) -> Envelope:
    return Envelope.wrap(payload, producer="test", correlation_id=str(uuid.uuid4()), occurred_at=at)  # type: ignore[arg-type]


async def test_income_per_day_is_the_charges_in_the_tutors_time_zone(
    client: httpx.AsyncClient, db: asyncpg.Pool, rabbit_url: str, people: People
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    tutor_id, student_id = uuid.UUID(tutor.id), uuid.UUID(student.id)
    late_evening = datetime(2026, 11, 2, 22, 30, tzinfo=UTC)  # 3 November in Moscow
    charge = {"student_id": student_id, "tutor_id": tutor_id, "currency": "RUB", "amount": PRICE}
    first, second = uuid.uuid4(), uuid.uuid4()
    events = [
        wrap(
            UserRegistered(user_id=tutor_id, role="tutor", full_name="T", timezone="Europe/Moscow", language="ru"),
            late_evening - timedelta(days=30),
        ),
        wrap(PaymentCharged(**charge, balance_after=-PRICE, charge_id=first, lesson_id=uuid.uuid4()), late_evening),
        wrap(PaymentCharged(**charge, balance_after=-2 * PRICE, charge_id=second), late_evening + timedelta(hours=1)),
        wrap(
            PaymentRefunded(**charge, balance_after=-PRICE, refund_id=uuid.uuid4(), charge_id=second),
            late_evening + timedelta(days=2),
        ),
    ]
    await publish_and_wait(rabbit_url, db, events)
    await publish_and_wait(rabbit_url, db, events[1:2])  # published twice: no second effect

    url = f"/api/v1/analytics/tutors/{tutor.id}/income"
    params = {"from": "2026-11-01", "to": "2026-11-30"}
    response = await client.get(url, params=params, headers=tutor.headers)
    assert response.status_code == 200, response.text
    assert {k: response.json()[k] for k in ("tutor_id", "timezone", "from", "to")} == {
        "tutor_id": tutor.id,
        "timezone": "Europe/Moscow",
        "from": "2026-11-01",
        "to": "2026-11-30",
    }
    assert response.json()["items"] == [
        {"period": "2026-11-03", "currency": "RUB", "charged": 2 * PRICE, "refunded": 0, "income": 2 * PRICE},
        {"period": "2026-11-05", "currency": "RUB", "charged": 0, "refunded": PRICE, "income": -PRICE},
    ]
    monthly = await client.get(url, params={**params, "group": "month"}, headers=tutor.headers)
    assert [row["income"] for row in monthly.json()["items"]] == [PRICE]

    exported = await client.get(url, params={**params, "format": "csv"}, headers=tutor.headers)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["period"], r["income"]) for r in rows] == [("2026-11-03", str(2 * PRICE)), ("2026-11-05", str(-PRICE))]

    summary = await client.get("/api/v1/analytics/tutors/me/summary", params=params, headers=tutor.headers)
    assert (summary.json()["from"], summary.json()["to"]) == ("2026-11-01", "2026-11-30")
    assert summary.json()["income"] == [{"currency": "RUB", "amount": PRICE}]
    assert summary.json()["debts"] == [{"student_id": student.id, "amount": PRICE, "currency": "RUB"}]

    refused = await client.get(url, params={"from": "2026-11-30", "to": "2026-11-01"}, headers=tutor.headers)
    assert refused.status_code == 422


async def test_who_may_see_which_report(
    client: httpx.AsyncClient, db: asyncpg.Pool, rabbit_url: str, people: People
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    parent = people.parent_of(student)
    other_tutor, stranger, admin = people.tutor(), people.make("student"), people.admin()

    tutor_report = f"/api/v1/analytics/tutors/{tutor.id}/summary"
    progress = f"/api/v1/analytics/students/{student.id}/progress"
    seen = {
        who: (
            (await client.get(tutor_report, headers=p.headers)).status_code,
            (await client.get(progress, headers=p.headers)).status_code,
        )
        for who, p in {
            "tutor": tutor,
            "student": student,
            "parent": parent,
            "other_tutor": other_tutor,
            "stranger": stranger,
            "admin": admin,
        }.items()
    }
    assert seen == {
        "tutor": (200, 200),
        "student": (404, 200),
        "parent": (404, 200),
        "other_tutor": (404, 404),
        "stranger": (404, 404),
        "admin": (200, 200),
    }
    assert (await client.get(tutor_report)).status_code == 401


async def test_a_students_progress_over_time_and_the_metrics(
    client: httpx.AsyncClient, db: asyncpg.Pool, rabbit_url: str, people: People
) -> None:
    p = practice(seed=2, students=1, lessons=40)
    tutor_headers = people.users.tokens.auth_header(str(p.tutor_id), "tutor")
    people.users.link(str(p.tutor_id), str(p.student_ids[0]), "tutor")
    await publish_and_wait(rabbit_url, db, p.events)

    response = await client.get(
        f"/api/v1/analytics/students/{p.student_ids[0]}/progress",
        params={"from": "2026-09-01", "to": "2026-12-31"},
        headers=tutor_headers,
    )
    assert response.status_code == 200, response.text
    assert (response.json()["student_id"], response.json()["from"]) == (str(p.student_ids[0]), "2026-09-01")
    months = response.json()["items"]
    assert [m["period"] for m in months] == ["2026-10-01", "2026-11-01"]
    assert sum(m["lessons_held"] for m in months) > 0

    metrics = (await client.get("/metrics")).text
    for name in (
        'analytics_lessons_completed_total{service="analytics-service"}',
        'analytics_revenue_minor_units_total{currency="RUB",service="analytics-service"}',
        'analytics_active_students{service="analytics-service"}',
        'analytics_xp_awarded_total{service="analytics-service"}',
        'analytics_achievements_unlocked_total{service="analytics-service"}',
    ):
        assert name in metrics, name


async def test_the_csv_exports_have_the_media_type_the_openapi_document_names(
    client: httpx.AsyncClient, people: People
) -> None:
    # found by tests/test_fuzzing.py: ?format=csv answered text/csv where only JSON was documented
    tutor = people.tutor()
    student = people.student_of(tutor)
    paths = {
        "/api/v1/analytics/tutors/{tutor_id}/income": f"/api/v1/analytics/tutors/{tutor.id}/income",
        "/api/v1/analytics/students/{student_id}/progress": f"/api/v1/analytics/students/{student.id}/progress",
    }
    documented = (await client.get("/openapi.json")).json()["paths"]
    for template, url in paths.items():
        media_types = documented[template]["get"]["responses"]["200"]["content"]
        for report_format in ("json", "csv"):
            response = await client.get(url, params={"format": report_format}, headers=tutor.headers)
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].split(";")[0] in media_types, (template, report_format)


async def test_cli_rebuild_recomputes_the_same_models(db: asyncpg.Pool, database_url: str, rabbit_url: str) -> None:
    p = practice(seed=9, lessons=10)
    await publish_and_wait(rabbit_url, db, p.events)
    before = await read_models(db)
    assert await cli.rebuild(database_url) >= len(p.events)
    assert await read_models(db) == before
