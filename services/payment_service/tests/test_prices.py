"""Prices: the tutor's default, a student's own, and which one a lesson costs."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pytest

from services.payment_service.tests.conftest import Api, assert_error, publish_and_wait
from shared.events.catalogue import StudentLinked
from shared.events.envelope import Envelope


async def test_the_students_price_overrides_the_default_until_removed(
    api: Api, client: httpx.AsyncClient, rabbit_url: str, db: asyncpg.Pool
) -> None:
    family = api.family()
    # the link reaches payment-service as user-service announces it: the student's tutor is known
    link = StudentLinked(
        student_id=uuid.UUID(family.student.id),
        principal_id=uuid.UUID(family.tutor.id),
        relation="tutor",
        tutor_id=uuid.UUID(family.tutor.id),
    )
    await publish_and_wait(rabbit_url, db, Envelope.wrap(link, producer="user-service", correlation_id="link"))
    path = f"/api/v1/payments/prices/students/{family.student.id}"
    assert_error(await client.get(path, headers=family.student.headers), 404)  # nothing set yet
    assert_error(await client.get("/api/v1/payments/prices/default", headers=family.tutor.headers), 404)

    await api.set_price(family.tutor, 2000)
    default = (await client.get(path, headers=family.parent.headers)).json()
    assert (default["amount"], default["currency"], default["source"]) == (2000, "RUB", "default")

    await api.set_price(family.tutor, 1500, family.student.id)
    await api.set_price(family.tutor, 1700, family.student.id)  # replaced, not added
    own = (await client.get(path, headers=family.student.headers)).json()
    assert (own["amount"], own["source"]) == (1700, "student")

    assert (await client.delete(path, headers=family.tutor.headers)).status_code == 204
    assert (await client.get(path, headers=family.tutor.headers)).json()["source"] == "default"
    assert_error(await client.delete(path, headers=family.tutor.headers), 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": 0, "currency": "RUB"}, "amount"),
        ({"amount": -5, "currency": "RUB"}, "amount"),
        ({"amount": 5}, "currency"),
    ],
)
async def test_invalid_prices_are_422_naming_the_field(
    api: Api, client: httpx.AsyncClient, body: dict, field: str
) -> None:
    tutor = api.person("tutor")
    error = assert_error(await client.put("/api/v1/payments/prices/default", json=body, headers=tutor.headers), 422)
    assert error["details"][0]["field"] == field


async def test_a_student_with_two_tutors_names_the_tutor(api: Api) -> None:
    family = api.family()
    second_tutor = api.person("tutor")
    api.users.link(second_tutor.id, family.student.id, "tutor")
    await api.top_up(family.tutor, family.student.id, 100)
    assert (await api.balance(family.student, family.student.id)).json()["balance"] == 100  # the only balance
    await api.top_up(second_tutor, family.student.id, 700)
    error = assert_error(await api.balance(family.student, family.student.id), 422)
    assert error["details"][0]["field"] == "tutor_id"
    chosen = await api.balance(family.student, family.student.id, tutor_id=second_tutor.id)
    assert (chosen.json()["balance"], chosen.json()["tutor_id"]) == (700, second_tutor.id)
    # each tutor sees their own balance with the student
    assert (await api.balance(second_tutor, family.student.id)).json()["balance"] == 700
    assert (await api.balance(family.tutor, family.student.id)).json()["balance"] == 100
