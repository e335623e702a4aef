"""Top-ups, refunds and corrections: one ledger row each, idempotent, validated, and the balance
derived from the rows (it cannot drift)."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
import pytest

from services.payment_service.tests.conftest import (
    Api,
    assert_error,
    envelope,
    ledger_matches_accounts,
    publish_and_wait,
    scheduled,
)


async def test_a_top_up_is_recorded_and_the_balance_follows(api: Api, db: asyncpg.Pool) -> None:
    family = api.family()
    response = await api.top_up(family.tutor, family.student.id, 150_000, method="transfer")
    assert response.status_code == 201, response.text
    entry = response.json()
    assert entry["kind"] == "top_up" and entry["amount"] == 150_000 and entry["balance_after"] == 150_000
    assert entry["method"] == "transfer" and entry["currency"] == "RUB"

    balance = (await api.balance(family.tutor, family.student.id)).json()
    assert balance["student_id"] == family.student.id
    assert (balance["balance"], balance["currency"], balance["in_debt"]) == (150_000, "RUB", False)
    assert {"lessons_covered", "covered_until"} <= set(balance)

    [received] = await db.fetch(
        "SELECT envelope->'payload' AS p FROM outbox_events WHERE event_type = 'payment.received'"
        " AND envelope->'payload'->>'payment_id' = $1",
        entry["id"],
    )
    assert '"balance_after": 150000' in received["p"]
    await ledger_matches_accounts(db)


async def test_the_same_idempotency_key_records_one_payment(
    api: Api, client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    family = api.family()
    body = {"student_id": family.student.id, "amount": 5000, "currency": "RUB", "method": "cash"}
    headers = {**family.tutor.headers, "Idempotency-Key": f"top-up-{uuid.uuid4()}"}
    first = await client.post("/api/v1/payments/top-ups", json=body, headers=headers)
    again = await client.post("/api/v1/payments/top-ups", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    other_body = await client.post("/api/v1/payments/top-ups", json={**body, "amount": 6000}, headers=headers)
    assert_error(other_body, 422, "idempotency_key_reused")

    rows = await db.fetchval("SELECT count(*) FROM ledger_entries WHERE student_id = $1::uuid", family.student.id)
    assert rows == 1
    assert (await api.balance(family.tutor, family.student.id)).json()["balance"] == 5000


async def test_concurrent_retries_with_one_key_record_one_payment(
    api: Api, client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    family = api.family()
    body = {"student_id": family.student.id, "amount": 700, "currency": "RUB", "method": "card"}
    headers = {**family.tutor.headers, "Idempotency-Key": "offline-queue-1"}
    answers = await asyncio.gather(
        *(client.post("/api/v1/payments/top-ups", json=body, headers=headers) for _ in range(5))
    )
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    assert await db.fetchval("SELECT count(*) FROM ledger_entries WHERE student_id = $1::uuid", family.student.id) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": -100}, "amount"),
        ({"amount": 1.5}, "amount"),
        ({"currency": "rub"}, "currency"),
        ({"method": "bitcoin"}, "method"),
        ({"student_id": "nope"}, "student_id"),
        ({"amount": None}, "amount"),  # neither an amount nor a package
        ({"lessons": 2}, "amount"),  # both
        ({"currency": None}, "currency"),  # an amount without its currency
    ],
)
async def test_invalid_top_ups_are_422_naming_the_field(
    api: Api, client: httpx.AsyncClient, change: dict, field: str
) -> None:
    family = api.family()
    body = {"student_id": family.student.id, "amount": 100, "currency": "RUB", "method": "cash", **change}
    response = await client.post(
        "/api/v1/payments/top-ups", json=body, headers={**family.tutor.headers, "Idempotency-Key": str(uuid.uuid4())}
    )
    error = assert_error(response, 422, "validation_error")
    assert field in [d["field"] for d in error["details"]], error


async def test_a_package_of_lessons_is_priced_at_the_students_price(api: Api, client: httpx.AsyncClient) -> None:
    family = api.family()
    no_price = await api.top_up(family.tutor, family.student.id, amount=None, lessons=4, currency=None)
    assert_error(no_price, 422, "no_price")
    await api.set_price(family.tutor, 2000)  # the tutor's default
    await api.set_price(family.tutor, 1500, family.student.id)  # this student's own price wins
    package = await api.top_up(family.tutor, family.student.id, amount=None, lessons=4, currency=None)
    assert package.status_code == 201, package.text
    assert (package.json()["amount"], package.json()["lessons"]) == (6000, 4)
    balance = (await api.balance(family.tutor, family.student.id)).json()
    assert (balance["balance"], balance["lessons_covered"]) == (6000, 4)  # none scheduled yet: 6000 // 1500


async def test_a_balance_keeps_its_currency(api: Api) -> None:
    family = api.family()
    assert (await api.top_up(family.tutor, family.student.id, 100)).status_code == 201
    error = assert_error(
        await api.top_up(family.tutor, family.student.id, 100, currency="EUR"), 422, "currency_mismatch"
    )
    assert error["details"][0]["field"] == "currency"


async def test_refunds_and_corrections_are_rows_of_their_own_with_a_reason(
    api: Api, client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    family = api.family()
    paid = (await api.top_up(family.tutor, family.student.id, 10_000)).json()
    headers = family.tutor.headers
    refund = {"student_id": family.student.id, "amount": 4000, "currency": "RUB", "payment_id": paid["id"]}
    assert_error(await client.post("/api/v1/payments/refunds", json=refund, headers=headers), 422)  # no reason
    made = await client.post("/api/v1/payments/refunds", json={**refund, "reason": "moved away"}, headers=headers)
    assert made.status_code == 201, made.text
    assert (made.json()["kind"], made.json()["amount"], made.json()["payment_id"]) == ("refund", -4000, paid["id"])
    too_much = await client.post(
        "/api/v1/payments/refunds", json={**refund, "amount": 6001, "reason": "again"}, headers=headers
    )
    assert_error(too_much, 422, "refund_too_large")

    correction = {"student_id": family.student.id, "amount": -500, "currency": "RUB", "reason": "typo in a top-up"}
    fixed = await client.post("/api/v1/payments/corrections", json=correction, headers=headers)
    assert fixed.status_code == 201 and fixed.json()["balance_after"] == 5500
    zero = await client.post("/api/v1/payments/corrections", json={**correction, "amount": 0}, headers=headers)
    assert_error(zero, 422)

    assert (await api.balance(family.tutor, family.student.id)).json()["balance"] == 5500
    refunded = await db.fetchval(
        "SELECT count(*) FROM outbox_events WHERE event_type = 'payment.refunded'"
        " AND envelope->'payload'->>'student_id' = $1",
        family.student.id,
    )
    assert refunded == 1
    await ledger_matches_accounts(db)


async def test_ledger_rows_cannot_be_edited_or_deleted(api: Api, db: asyncpg.Pool) -> None:
    family = api.family()
    entry = (await api.top_up(family.tutor, family.student.id, 100)).json()
    for statement in (
        "UPDATE ledger_entries SET amount = 1000000 WHERE id = $1::uuid",
        "DELETE FROM ledger_entries WHERE id = $1::uuid",
    ):
        with pytest.raises(asyncpg.RestrictViolationError, match="immutable"):
            await db.execute(statement, entry["id"])
    assert (await api.balance(family.tutor, family.student.id)).json()["balance"] == 100


async def test_only_the_students_tutor_records_payments(api: Api) -> None:
    family, stranger = api.family(), api.person("tutor")
    assert_error(await api.top_up(stranger, family.student.id), 404)  # another tutor's student: not found
    assert_error(await api.top_up(family.student, family.student.id), 403)  # not a tutor
    assert_error(await api.top_up(family.parent, family.student.id), 403)


async def test_a_balance_without_rows_takes_the_currency_of_its_first_payment(
    api: Api, rabbit_url: str, db: asyncpg.Pool
) -> None:
    family = api.family()
    await publish_and_wait(rabbit_url, db, envelope(scheduled(family)))  # no price: made in the default currency
    assert (await api.balance(family.tutor, family.student.id)).json()["currency"] == "RUB"
    assert (await api.top_up(family.tutor, family.student.id, 100, currency="EUR")).status_code == 201
    assert (await api.balance(family.tutor, family.student.id)).json()["currency"] == "EUR"
    assert_error(await api.top_up(family.tutor, family.student.id, 100), 422, "currency_mismatch")
