"""Who may do what, as a matrix: tutor A, tutor B, a student of A, a parent of that student,
and anonymous, over every payment-service route."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import httpx
import pytest

from services.payment_service.tests.conftest import Api, Family, Person

ANONYMOUS = Person("", "anonymous", {})
WHO = ("tutor_a", "tutor_b", "student", "parent", "anonymous")

Call = Callable[[httpx.AsyncClient, Family, dict[str, str]], Awaitable[httpx.Response]]


def _post(path: str, body: Callable[[Family], dict]) -> Call:
    async def call(client: httpx.AsyncClient, family: Family, headers: dict[str, str]) -> httpx.Response:
        return await client.post(path, json=body(family), headers={**headers, "Idempotency-Key": str(uuid.uuid4())})

    return call


def _get(path: str) -> Call:
    async def call(client: httpx.AsyncClient, family: Family, headers: dict[str, str]) -> httpx.Response:
        return await client.get(path.format(student=family.student.id), headers=headers)

    return call


def _put(path: str) -> Call:
    async def call(client: httpx.AsyncClient, family: Family, headers: dict[str, str]) -> httpx.Response:
        body = {"amount": 1000, "currency": "RUB"}
        return await client.put(path.format(student=family.student.id), json=body, headers=headers)

    return call


def _money(kind: str) -> Callable[[Family], dict]:
    def body(family: Family) -> dict:
        fields = {"student_id": family.student.id, "amount": 100, "currency": "RUB"}
        return {**fields, "method": "cash"} if kind == "top-ups" else {**fields, "reason": "because"}

    return body


# expected status for (tutor A, tutor B, student of A, parent of the student, anonymous)
MATRIX: dict[str, tuple[Call, tuple[int, int, int, int, int]]] = {
    "record a top-up": (_post("/api/v1/payments/top-ups", _money("top-ups")), (201, 404, 403, 403, 401)),
    "record a refund": (_post("/api/v1/payments/refunds", _money("refunds")), (201, 404, 403, 403, 401)),
    "record a correction": (_post("/api/v1/payments/corrections", _money("corrections")), (201, 404, 403, 403, 401)),
    "read the balance": (_get("/api/v1/payments/balances/{student}"), (200, 404, 200, 200, 401)),
    "read the statement": (_get("/api/v1/payments/statements/{student}"), (200, 404, 200, 200, 401)),
    "read monthly totals": (_get("/api/v1/payments/statements/{student}/monthly"), (200, 404, 200, 200, 401)),
    "export the statement": (_get("/api/v1/payments/statements/{student}/export.csv"), (200, 404, 200, 200, 401)),
    "read the student's price": (_get("/api/v1/payments/prices/students/{student}"), (200, 404, 200, 200, 401)),
    "set the student's price": (_put("/api/v1/payments/prices/students/{student}"), (200, 404, 403, 403, 401)),
    "set the default price": (_put("/api/v1/payments/prices/default"), (200, 200, 403, 403, 401)),
    "list debts": (_get("/api/v1/payments/debts"), (200, 200, 403, 403, 401)),
}


@pytest.mark.parametrize("action", list(MATRIX))
async def test_access_matrix(action: str, api: Api, client: httpx.AsyncClient) -> None:
    family = api.family()
    await api.set_price(family.tutor, 1000)
    await api.top_up(family.tutor, family.student.id, 5000)
    people = dict(zip(WHO, (family.tutor, api.person("tutor"), family.student, family.parent, ANONYMOUS), strict=True))
    call, expected = MATRIX[action]
    got = {}
    for who in WHO:
        got[who] = (await call(client, family, people[who].headers)).status_code
    assert got == dict(zip(WHO, expected, strict=True))


async def test_a_student_of_another_tutor_is_not_found_and_unknown_ids_look_the_same(
    api: Api, client: httpx.AsyncClient
) -> None:
    family, other = api.family(), api.family()
    for student_id in (other.student.id, str(uuid.uuid4())):
        response = await client.get(f"/api/v1/payments/balances/{student_id}", headers=family.tutor.headers)
        assert response.status_code == 404
    # a student sees only their own balance, a parent only their child's
    assert (await api.balance(family.student, other.student.id)).status_code == 404
    assert (await api.balance(family.parent, other.student.id)).status_code == 404
