"""Assign, submit (and resubmit), grade or return, list by status; each change's event in the outbox."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from services.homework_service.tests.conftest import People, assert_error, assign, at, outbox_payloads, submit


async def test_assign_answers_201_assigned_and_adds_homework_assigned(
    client: httpx.AsyncClient, people: People, db: asyncpg.Pool
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    lesson_id, material = str(uuid.uuid4()), str(uuid.uuid4())
    homework = await assign(
        client,
        tutor,
        student,
        description="Chapter 3",
        lesson_id=lesson_id,
        link="https://example.com/task",
        material_ids=[material, material],
    )
    assert homework["status"] == "assigned"
    assert homework["lesson_id"] == lesson_id and homework["material_ids"] == [material]
    assert homework["link"] == "https://example.com/task"
    [event] = await outbox_payloads(db, "homework.assigned", homework_id=homework["id"])
    assert event["student_id"] == student.id and event["tutor_id"] == tutor.id and event["lesson_id"] == lesson_id


async def test_invalid_input_names_the_field(client: httpx.AsyncClient, people: People) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    naive = {"student_id": student.id, "title": "x", "due_at": "2026-03-05T10:00:00"}
    error = assert_error(await client.post("/api/v1/homework", json=naive, headers=tutor.headers), 422)
    assert "due_at" in str(error["details"])
    homework = await assign(client, tutor, student)
    bad_grade = await client.post(f"/api/v1/homework/{homework['id']}/grade", json={"grade": 6}, headers=tutor.headers)
    assert "grade" in str(assert_error(bad_grade, 422)["details"])


async def test_submit_then_grade_with_events(client: httpx.AsyncClient, people: People, db: asyncpg.Pool) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    homework = await assign(client, tutor, student)
    photo = str(uuid.uuid4())
    response = await submit(client, student, homework["id"], text="my answers", material_ids=[photo])
    assert response.status_code == 201, response.text
    submission = response.json()
    assert submission["material_ids"] == [photo] and submission["late"] is False
    [submitted] = await outbox_payloads(db, "homework.submitted", homework_id=homework["id"])
    assert submitted["submission_id"] == submission["id"] and submitted["material_ids"] == [photo]

    read = await client.get(f"/api/v1/homework/{homework['id']}", headers=student.headers)
    assert read.json()["status"] == "submitted"

    graded = await client.post(
        f"/api/v1/homework/{homework['id']}/grade", json={"grade": 5, "comment": "Great"}, headers=tutor.headers
    )
    assert graded.status_code == 200, graded.text
    body = graded.json()
    assert (body["status"], body["grade"], body["comment"], body["submission_id"]) == (
        "graded",
        5,
        "Great",
        submission["id"],
    )
    [event] = await outbox_payloads(db, "homework.graded", homework_id=homework["id"])
    assert event["grade"] == 5 and event["submission_id"] == submission["id"]

    # graded is final: no second grade, no more submissions
    again = await client.post(f"/api/v1/homework/{homework['id']}/grade", json={"grade": 4}, headers=tutor.headers)
    assert_error(again, 409, "already_graded")
    assert_error(await submit(client, student, homework["id"]), 409, "already_graded")


async def test_returned_for_rework_then_resubmitted_then_graded(
    client: httpx.AsyncClient, people: People, db: asyncpg.Pool
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    homework = await assign(client, tutor, student)
    url = f"/api/v1/homework/{homework['id']}"
    assert_error(await client.post(f"{url}/return", json={}, headers=tutor.headers), 409, "not_submitted")
    assert (await submit(client, student, homework["id"], text="first try")).status_code == 201
    returned = await client.post(f"{url}/return", json={"comment": "Redo task 3"}, headers=tutor.headers)
    assert returned.status_code == 200 and returned.json()["status"] == "returned"
    assert returned.json()["comment"] == "Redo task 3"
    second = await submit(client, student, homework["id"], text="second try")
    assert second.status_code == 201
    # a resubmission before grading is allowed too
    third = await submit(client, student, homework["id"], text="third try")
    assert third.status_code == 201
    history = (await client.get(f"{url}/submissions", headers=tutor.headers)).json()["items"]
    assert [x["text"] for x in history] == ["first try", "second try", "third try"]
    graded = await client.post(f"{url}/grade", json={"grade": 4}, headers=tutor.headers)
    assert graded.json()["submission_id"] == third.json()["id"]
    assert len(await outbox_payloads(db, "homework.submitted", homework_id=homework["id"])) == 3


async def test_submission_and_grade_take_an_idempotency_key(
    client: httpx.AsyncClient, people: People, db: asyncpg.Pool
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    homework = await assign(client, tutor, student)
    url = f"/api/v1/homework/{homework['id']}"
    headers = {**student.headers, "Idempotency-Key": f"sub-{uuid.uuid4()}"}
    first = await client.post(f"{url}/submissions", json={"text": "offline"}, headers=headers)
    again = await client.post(f"{url}/submissions", json={"text": "offline"}, headers=headers)
    assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
    other = await client.post(f"{url}/submissions", json={"text": "different"}, headers=headers)
    assert other.status_code == 422
    assert len(await outbox_payloads(db, "homework.submitted", homework_id=homework["id"])) == 1

    grade_headers = {**tutor.headers, "Idempotency-Key": f"grade-{uuid.uuid4()}"}
    one = await client.post(f"{url}/grade", json={"grade": 4}, headers=grade_headers)
    two = await client.post(f"{url}/grade", json={"grade": 4}, headers=grade_headers)
    assert one.status_code == two.status_code == 200 and one.json() == two.json()
    assert len(await outbox_payloads(db, "homework.graded", homework_id=homework["id"])) == 1


async def test_lists_by_status_for_tutor_student_and_parent(client: httpx.AsyncClient, people: People) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    parent = people.parent_of(student)
    assigned = await assign(client, tutor, student, title="assigned")
    overdue = await assign(client, tutor, student, title="overdue", due_at=at(days=-1))
    submitted = await assign(client, tutor, student, title="submitted")
    await submit(client, student, submitted["id"])
    returned = await assign(client, tutor, student, title="returned")
    await submit(client, student, returned["id"])
    await client.post(f"/api/v1/homework/{returned['id']}/return", json={}, headers=tutor.headers)
    graded = await assign(client, tutor, student, title="graded")
    await client.post(f"/api/v1/homework/{graded['id']}/grade", json={"grade": 3}, headers=tutor.headers)
    assert overdue["status"] == "overdue"

    expected = {
        "assigned": assigned,
        "overdue": overdue,
        "submitted": submitted,
        "returned": returned,
        "graded": graded,
    }
    # a parent names the child (links known only from user-service so far are checked on that call)
    for person, base in ((tutor, {}), (student, {}), (parent, {"student_id": student.id})):
        everything = await client.get("/api/v1/homework", params=base, headers=person.headers)
        assert everything.status_code == 200
        assert set(everything.json()) == {"items", "next_cursor"}
        assert len(everything.json()["items"]) == 5
        for status, homework in expected.items():
            params = {**base, "status": status}
            page = (await client.get("/api/v1/homework", params=params, headers=person.headers)).json()
            assert [(x["id"], x["status"]) for x in page["items"]] == [(homework["id"], status)], (person.role, status)

    first = (await client.get("/api/v1/homework", params={"limit": 2}, headers=tutor.headers)).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = await client.get(
        "/api/v1/homework", params={"limit": 50, "cursor": first["next_cursor"]}, headers=tutor.headers
    )
    seen = [x["id"] for x in first["items"] + rest.json()["items"]]
    assert len(seen) == len(set(seen)) == 5
    bad = await client.get("/api/v1/homework", params={"status": "lost"}, headers=tutor.headers)
    assert "status" in str(assert_error(bad, 422)["details"])


async def test_a_late_submission_is_marked_late(client: httpx.AsyncClient, people: People) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    homework = await assign(client, tutor, student, due_at=at(hours=-1))
    response = await submit(client, student, homework["id"])
    assert response.status_code == 201 and response.json()["late"] is True


async def test_pages_with_equal_creation_times_show_every_homework_once(
    client: httpx.AsyncClient, people: People, db: asyncpg.Pool
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    ids = [(await assign(client, tutor, student))["id"] for _ in range(5)]
    # the same instant for all (as when created in one transaction): only the id orders them
    await db.execute("UPDATE homework SET created_at = now() WHERE id = ANY($1::uuid[])", ids)
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/v1/homework", params=params, headers=tutor.headers)).json()
        seen += [x["id"] for x in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids)
