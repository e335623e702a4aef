"""A student's statement: history newest first by cursor, totals per month, CSV, the tutor's debts."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from services.payment_service.tests.conftest import Api, Family, assert_error, completed, envelope, publish_and_wait


async def test_the_statement_pages_newest_first(api: Api, client: httpx.AsyncClient) -> None:
    family = api.family()
    made = [(await api.top_up(family.tutor, family.student.id, amount)).json()["id"] for amount in (100, 200, 300)]
    path = f"/api/v1/payments/statements/{family.student.id}"
    first = (await client.get(path, params={"limit": 2}, headers=family.parent.headers)).json()
    assert [item["id"] for item in first["items"]] == made[:0:-1] and first["next_cursor"]
    second = (
        await client.get(path, params={"limit": 2, "cursor": first["next_cursor"]}, headers=family.parent.headers)
    ).json()
    assert [item["id"] for item in second["items"]] == made[:1] and second["next_cursor"] is None
    assert second["items"][0]["balance_after"] == 100
    assert_error(await client.get(path, params={"cursor": "garbage"}, headers=family.tutor.headers), 422)
    assert_error(await client.get(path, params={"limit": 201}, headers=family.tutor.headers), 422)


async def test_monthly_totals_and_csv(api: Api, client: httpx.AsyncClient, rabbit_url: str, db: asyncpg.Pool) -> None:
    family = api.family()
    await api.set_price(family.tutor, 1000)
    await api.top_up(family.tutor, family.student.id, 5000)
    last_month = datetime.now(UTC) - timedelta(days=40)
    lesson = completed(family, starts_at=last_month)
    await publish_and_wait(rabbit_url, db, envelope(lesson, occurred_at=last_month + timedelta(hours=2)))
    await client.post(
        "/api/v1/payments/refunds",
        json={"student_id": family.student.id, "amount": 500, "currency": "RUB", "reason": '=HYPERLINK("x")'},
        headers=family.tutor.headers,
    )

    path = f"/api/v1/payments/statements/{family.student.id}"
    months = (await client.get(f"{path}/monthly", headers=family.student.headers)).json()["items"]
    assert len(months) == 2
    earlier, this = months
    assert (earlier["charges"], earlier["top_ups"], earlier["net"], earlier["closing_balance"]) == (
        1000,
        0,
        -1000,
        -1000,
    )
    assert (this["top_ups"], this["refunds"], this["net"], this["closing_balance"]) == (5000, 500, 4500, 3500)
    bad_zone = await client.get(f"{path}/monthly", params={"timezone": "Mars/Base"}, headers=family.tutor.headers)
    assert assert_error(bad_zone, 422)["details"][0]["field"] == "timezone"

    exported = await client.get(f"{path}/export.csv", headers=family.tutor.headers)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["kind"], r["amount"], r["balance_after"]) for r in rows] == [
        ("top_up", "5000", "5000"),
        ("lesson_charge", "-1000", "4000"),  # in the order applied; dated last month (the lesson's time)
        ("refund", "-500", "3500"),
    ]
    assert rows[1]["lesson_id"] == str(lesson.lesson_id)
    assert rows[2]["reason"] == '\'=HYPERLINK("x")'  # shown as text, never run as a formula
    assert datetime.fromisoformat(rows[1]["created_at"]) < datetime.fromisoformat(rows[0]["created_at"])


async def test_the_tutors_debts(api: Api, client: httpx.AsyncClient, rabbit_url: str, db: asyncpg.Pool) -> None:
    tutor_family = api.family()
    tutor = tutor_family.tutor
    await api.set_price(tutor, 1000)
    owing = [Family(tutor, api.person("student"), tutor_family.parent) for _ in range(3)]
    for family in owing:
        api.users.link(tutor.id, family.student.id, "tutor")
        await publish_and_wait(rabbit_url, db, envelope(completed(family)))
    await api.top_up(tutor, tutor_family.student.id, 5000)  # in credit: not a debt
    first = (await client.get("/api/v1/payments/debts", params={"limit": 2}, headers=tutor.headers)).json()
    second = (
        await client.get("/api/v1/payments/debts", params={"cursor": first["next_cursor"]}, headers=tutor.headers)
    ).json()
    listed = first["items"] + second["items"]
    assert sorted(d["student_id"] for d in listed) == sorted(f.student.id for f in owing)
    assert {(d["balance"], d["currency"]) for d in listed} == {(-1000, "RUB")}
    assert second["next_cursor"] is None
