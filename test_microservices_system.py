#!/usr/bin/env python3
"""The system test: RepitBot's main journeys, step by step, over HTTP.

Run it against a running fleet with plain ``python3 test_microservices_system.py``
(``GATEWAY_URL``, default http://localhost:8000). It prints each step and exits
non-zero on the first failure. It uses only the standard library, so it runs
anywhere.

``pytest`` collects the same steps (``test_system_step``) against the test fleet.
It grows with every issue.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any


class StepFailed(AssertionError):
    pass


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class Scenario:
    """One run's state: the users it created and what it learned along the way."""

    base_url: str
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    tokens: dict[str, str] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        as_user: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url.rstrip("/") + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        request.add_header("X-Correlation-ID", f"system-{self.run}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if as_user:
            request.add_header("Authorization", f"Bearer {self.tokens[as_user]}")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=15) as reply:
                return Response(reply.status, _decode(reply.read()), dict(reply.headers))
        except urllib.error.HTTPError as error:
            return Response(error.code, _decode(error.read()), dict(error.headers))

    def expect(self, response: Response, status: int, what: str) -> Any:
        if response.status != status:
            raise StepFailed(f"{what}: expected HTTP {status}, got {response.status}: {response.body}")
        return response.body

    def email(self, who: str) -> str:
        return f"{who}-{self.run}@example.test"


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


PASSWORD = "correct horse battery staple"


def step_fleet_is_up(s: Scenario) -> str:
    body = s.expect(s.call("GET", "/health"), 200, "GET /health")
    return f"health: {body.get('status')}"


def step_tutor_registers(s: Scenario) -> str:
    body = s.expect(
        s.call(
            "POST",
            "/api/v1/auth/register",
            {"email": s.email("tutor"), "password": PASSWORD, "full_name": "Anna Petrovna", "language": "ru"},
        ),
        201,
        "register the tutor",
    )
    if body["user"]["role"] != "tutor":
        raise StepFailed(f"a user registered without an invite is a tutor, got {body['user']['role']}")
    s.tokens["tutor"], s.refresh_tokens["tutor"] = body["access_token"], body["refresh_token"]
    s.ids["tutor"] = body["user"]["id"]
    return f"tutor {s.ids['tutor']}"


def step_tutor_logs_in_and_refreshes(s: Scenario) -> str:
    body = s.expect(
        s.call("POST", "/api/v1/auth/login", {"email": s.email("tutor"), "password": PASSWORD}), 200, "log in"
    )
    first_refresh = body["refresh_token"]
    rotated = s.expect(s.call("POST", "/api/v1/auth/refresh", {"refresh_token": first_refresh}), 200, "refresh")
    if rotated["refresh_token"] == first_refresh:
        raise StepFailed("refresh must rotate the refresh token")
    s.expect(
        s.call("POST", "/api/v1/auth/refresh", {"refresh_token": first_refresh}), 401, "reusing a rotated refresh token"
    )
    s.expect(
        s.call("POST", "/api/v1/auth/refresh", {"refresh_token": rotated["refresh_token"]}),
        401,
        "the family is revoked after reuse",
    )
    s.tokens["tutor"] = body["access_token"]
    return "rotation and reuse detection hold"


def step_me(s: Scenario) -> str:
    me = s.expect(s.call("GET", "/api/v1/users/me", as_user="tutor"), 200, "GET /users/me")
    if me["id"] != s.ids["tutor"] or me["timezone"] != "Europe/Moscow":
        raise StepFailed(f"unexpected profile {me}")
    s.expect(s.call("GET", "/api/v1/users/me"), 401, "GET /users/me without a token")
    return f"{me['full_name']} in {me['timezone']}"


def step_student_joins_by_invite(s: Scenario) -> str:
    invite = s.expect(
        s.call("POST", "/api/v1/users/invites", {"role": "student"}, as_user="tutor"), 201, "tutor invites a student"
    )
    if not invite["deep_link"].endswith(invite["code"]):
        raise StepFailed(f"deep link should carry the code: {invite}")
    body = s.expect(
        s.call(
            "POST",
            "/api/v1/auth/register",
            {
                "email": s.email("student"),
                "password": PASSWORD,
                "full_name": "Petya Ivanov",
                "invite_code": invite["code"],
            },
        ),
        201,
        "student registers with the invite",
    )
    if body["user"]["role"] != "student":
        raise StepFailed(f"the invite's role is student, got {body['user']['role']}")
    s.tokens["student"], s.ids["student"] = body["access_token"], body["user"]["id"]
    s.expect(
        s.call(
            "POST",
            "/api/v1/auth/register",
            {"email": s.email("student2"), "password": PASSWORD, "full_name": "Twice", "invite_code": invite["code"]},
        ),
        409,
        "an invite works once",
    )
    return f"student {s.ids['student']}"


def step_tutor_sees_the_student(s: Scenario) -> str:
    students = s.expect(s.call("GET", "/api/v1/users/students", as_user="tutor"), 200, "list students")
    ids = [item["id"] for item in students["items"]]
    if s.ids["student"] not in ids:
        raise StepFailed(f"the new student is missing from {ids}")
    s.expect(s.call("GET", f"/api/v1/users/{s.ids['student']}", as_user="tutor"), 200, "tutor reads the student")
    return f"{len(ids)} student(s)"


def step_strangers_see_nothing(s: Scenario) -> str:
    body = s.expect(
        s.call(
            "POST",
            "/api/v1/auth/register",
            {"email": s.email("other-tutor"), "password": PASSWORD, "full_name": "Other Tutor"},
        ),
        201,
        "a second tutor registers",
    )
    s.tokens["other"] = body["access_token"]
    s.expect(
        s.call("GET", f"/api/v1/users/{s.ids['student']}", as_user="other"), 404, "another tutor reads the student"
    )
    s.expect(s.call("GET", f"/api/v1/users/{s.ids['tutor']}", as_user="other"), 404, "a tutor reads another tutor")
    return "another tutor gets 404"


def step_tutor_schedules_and_completes_a_lesson(s: Scenario) -> str:
    start = (datetime.now(UTC) + timedelta(days=7)).replace(minute=0, second=0, microsecond=0)
    body = {"student_id": s.ids["student"], "starts_at": start.isoformat(), "duration_minutes": 60, "subject": "Maths"}
    lesson = s.expect(s.call("POST", "/api/v1/lessons", body, as_user="tutor"), 201, "tutor schedules a lesson")
    if lesson["status"] != "scheduled":
        raise StepFailed(f"a new lesson is scheduled, got {lesson['status']}")
    clash = {**body, "starts_at": (start + timedelta(minutes=30)).isoformat()}
    s.expect(s.call("POST", "/api/v1/lessons", clash, as_user="tutor"), 409, "an overlapping lesson")
    s.expect(s.call("POST", "/api/v1/lessons", body, as_user="other"), 404, "another tutor schedules for the student")
    done = s.expect(
        s.call("POST", f"/api/v1/lessons/{lesson['id']}/complete", {"grade": 5, "notes": "well done"}, as_user="tutor"),
        200,
        "tutor completes the lesson",
    )
    if done["status"] != "completed" or done["grade"] != 5:
        raise StepFailed(f"the lesson should be completed with grade 5: {done}")
    s.expect(
        s.call("POST", f"/api/v1/lessons/{lesson['id']}/complete", {"grade": 4}, as_user="tutor"),
        409,
        "completing twice",
    )
    window = f"from={(start - timedelta(hours=1)).isoformat()}&to={(start + timedelta(hours=2)).isoformat()}"
    listed = s.expect(
        s.call("GET", "/api/v1/lessons?" + window.replace("+", "%2B"), as_user="student"), 200, "student's lessons"
    )
    if [item["id"] for item in listed["items"]] != [lesson["id"]]:
        raise StepFailed(f"the student should see the lesson: {listed}")
    s.values["completed_lesson"] = lesson["id"]
    return f"lesson {lesson['id']} completed; overlap → 409"


PRICE = 200_000  # kopecks: 2,000 RUB a lesson
TOP_UP = 1_000_000


def _wait_until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll until events have settled; bounded, so a lost event fails the step instead of hanging."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise StepFailed(f"timed out waiting for {what}")
        time.sleep(0.1)


def _statement(s: Scenario) -> list[dict[str, Any]]:
    body = s.expect(
        s.call("GET", f"/api/v1/payments/statements/{s.ids['student']}?limit=200", as_user="tutor"), 200, "statement"
    )
    return body["items"]


def _charges_for(s: Scenario, lesson_id: str) -> list[dict[str, Any]]:
    return [row for row in _statement(s) if row["lesson_id"] == lesson_id and row["kind"].endswith("charge")]


def step_tutor_sets_a_price_and_records_a_top_up(s: Scenario) -> str:
    s.expect(
        s.call("PUT", "/api/v1/payments/prices/default", {"amount": PRICE, "currency": "RUB"}, as_user="tutor"),
        200,
        "tutor sets the default lesson price",
    )
    key = {"Idempotency-Key": f"top-up-{s.run}"}
    body = {"student_id": s.ids["student"], "amount": TOP_UP, "currency": "RUB", "method": "transfer"}
    first = s.expect(s.call("POST", "/api/v1/payments/top-ups", body, as_user="tutor", headers=key), 201, "top-up")
    again = s.expect(s.call("POST", "/api/v1/payments/top-ups", body, as_user="tutor", headers=key), 201, "repeat")
    if again != first:
        raise StepFailed(f"the repeated key should replay the first answer: {first} vs {again}")
    s.expect(
        s.call(
            "POST",
            "/api/v1/payments/top-ups",
            {**body, "amount": 0},
            as_user="tutor",
            headers={"Idempotency-Key": f"zero-{s.run}"},
        ),
        422,
        "a zero top-up",
    )
    balance = s.expect(
        s.call("GET", f"/api/v1/payments/balances/{s.ids['student']}", as_user="student"), 200, "student's balance"
    )
    if balance["balance"] != TOP_UP or [r["kind"] for r in _statement(s)] != ["top_up"]:
        raise StepFailed(f"one top-up of {TOP_UP} expected: {balance}")
    s.values["balance"] = TOP_UP
    return f"balance {balance['balance']} {balance['currency']}, the repeated key recorded nothing"


def _weekly_series(
    s: Scenario, student: str, tutor: str, first: datetime, count: int, what: str, **extra: Any
) -> list[dict[str, Any]]:
    """``count`` weekly 60-minute Maths lessons from ``first`` on its weekday, scheduled by ``tutor``."""
    body = {
        "student_id": s.ids[student],
        "starts_at": first.isoformat(),
        "duration_minutes": 60,
        "subject": "Maths",
        "weekdays": [first.strftime("%a").upper()[:2]],
        "count": count,
        **extra,
    }
    series = s.expect(s.call("POST", "/api/v1/lessons/series", body, as_user=tutor), 201, what)
    return list(series["lessons"])


def step_tutor_schedules_a_weekly_series(s: Scenario) -> str:
    first = (datetime.now(UTC) + timedelta(days=14)).replace(hour=12, minute=0, second=0, microsecond=0)
    lessons = _weekly_series(s, "student", "tutor", first, 4, "tutor schedules a weekly series")
    if len(lessons) != 4 or any(item["status"] != "scheduled" for item in lessons):
        raise StepFailed(f"four scheduled lessons expected: {lessons}")
    clash = {
        "student_id": s.ids["student"],
        "starts_at": (first + timedelta(weeks=1, minutes=15)).isoformat(),
        "duration_minutes": 45,
        "subject": "Physics",
    }
    refused = s.call("POST", "/api/v1/lessons", clash, as_user="tutor")
    s.expect(refused, 409, "a lesson overlapping the series")
    s.values["series"] = [item["id"] for item in lessons]

    def covered() -> bool:
        balance = s.call("GET", f"/api/v1/payments/balances/{s.ids['student']}", as_user="tutor").body
        return balance.get("covered_until") is not None

    _wait_until(covered, "the runway to learn the scheduled lessons")
    return f"4 weekly lessons from {first:%d %b}; an overlapping one → 409"


def step_a_completed_lesson_is_charged_exactly_once(s: Scenario) -> str:
    lesson_id = s.values["completed_lesson"]
    expected = s.values["balance"] - PRICE

    def charged() -> bool:
        return len(_charges_for(s, lesson_id)) >= 1

    _wait_until(charged, "the completed lesson's charge")
    charges = _charges_for(s, lesson_id)
    balance = s.call("GET", f"/api/v1/payments/balances/{s.ids['student']}", as_user="tutor").body
    # ledger rows are signed: a charge takes the price off the balance
    if len(charges) != 1 or charges[0]["amount"] != -PRICE or balance["balance"] != expected:
        raise StepFailed(f"one charge of {PRICE} expected, balance {expected}: {charges}, {balance}")
    s.values["balance"] = expected
    return f"charged {PRICE} once; balance {expected}"


def step_a_late_cancellation_is_charged_and_an_early_one_is_not(s: Scenario) -> str:
    soon = (datetime.now(UTC) + timedelta(hours=3)).replace(second=0, microsecond=0)
    late = s.expect(
        s.call(
            "POST",
            "/api/v1/lessons",
            {"student_id": s.ids["student"], "starts_at": soon.isoformat(), "duration_minutes": 60, "subject": "Maths"},
            as_user="tutor",
        ),
        201,
        "a lesson in three hours",
    )
    early_id = s.values["series"][-1]  # weeks away
    for lesson_id, what in ((late["id"], "late"), (early_id, "early")):
        s.expect(
            s.call("POST", f"/api/v1/lessons/{lesson_id}/cancel", {"reason": "ill"}, as_user="student"),
            200,
            f"the student cancels the {what} lesson",
        )
    _wait_until(lambda: _charges_for(s, late["id"]), "the late cancellation's charge")
    late_charges, early_charges = _charges_for(s, late["id"]), _charges_for(s, early_id)
    if [(c["kind"], c["amount"]) for c in late_charges] != [("late_cancel_charge", -PRICE)] or early_charges:
        raise StepFailed(f"late: {late_charges}; early: {early_charges}")
    expected = s.values["balance"] - PRICE
    balance = s.call("GET", f"/api/v1/payments/balances/{s.ids['student']}", as_user="student").body
    if balance["balance"] != expected:
        raise StepFailed(f"balance {expected} expected: {balance}")
    return f"late cancellation charged {PRICE}, early one free; balance {expected}"


def _reminders(s: Scenario, lesson_id: str, as_user: str = "tutor") -> list[dict[str, Any]]:
    reply = s.call("GET", f"/api/v1/notifications/reminders?lesson_id={lesson_id}", as_user=as_user)
    return s.expect(reply, 200, "the lesson's reminders")["items"]


def step_reminders_for_the_next_lesson_and_none_for_a_cancelled_one(s: Scenario) -> str:
    next_id, cancelled_id = s.values["series"][0], s.values["series"][-1]
    student = s.ids["student"]

    def planned() -> list[dict[str, Any]]:
        mine = [x for x in _reminders(s, next_id) if x["user_id"] == student]
        return mine if len(mine) == 2 else []

    reminders = _wait_until(planned, "the next lesson's reminders")
    starts = {datetime.fromisoformat(x["starts_at"]) for x in reminders}
    offsets = sorted((datetime.fromisoformat(x["due_at"]), x["offset_minutes"], x["status"]) for x in reminders)
    if len(starts) != 1:
        raise StepFailed(f"one lesson time expected: {reminders}")
    start = starts.pop()
    if offsets != [(start - timedelta(hours=24), 1440, "pending"), (start - timedelta(hours=1), 60, "pending")]:
        raise StepFailed(f"reminders at T-24 h and T-1 h expected: {reminders}")

    def withdrawn() -> list[dict[str, Any]]:
        items = _reminders(s, cancelled_id)
        return items if items and all(x["status"] == "withdrawn" for x in items) else []

    _wait_until(withdrawn, "the cancelled lesson's reminders withdrawn")
    return f"reminders for {start:%d %b %H:%M} at T-24 h and T-1 h; the cancelled lesson's withdrawn"


def step_tutor_assigns_homework(s: Scenario) -> str:
    due = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0).isoformat()
    ids = []
    for title in ("Exercises 1-10", "Essay"):
        body = {"student_id": s.ids["student"], "title": title, "description": "see the textbook", "due_at": due}
        homework = s.expect(s.call("POST", "/api/v1/homework", body, as_user="tutor"), 201, f"tutor assigns {title!r}")
        if homework["status"] != "assigned":
            raise StepFailed(f"new homework is assigned, got {homework['status']}")
        ids.append(homework["id"])
    s.expect(s.call("POST", "/api/v1/homework", body, as_user="other"), 404, "another tutor assigns to the student")
    listed = s.expect(s.call("GET", "/api/v1/homework?status=assigned", as_user="student"), 200, "student's homework")
    if not set(ids) <= {item["id"] for item in listed["items"]}:
        raise StepFailed(f"the student should see both assignments: {listed}")
    s.values["homework"] = ids
    return f"homework {', '.join(ids)}"


def step_student_submits_homework(s: Scenario) -> str:
    # the file goes to material-service first; the submission carries its id
    answers = b"x = 3, y = -2\n" * 64
    upload, content_type = _multipart({"title": "My answers"}, "answers.txt", answers)
    status, raw, _ = _raw(
        s, "POST", "/api/v1/materials", as_user="student", data=upload, headers={"Content-Type": content_type}
    )
    if status != 201:
        raise StepFailed(f"student uploads a file: expected HTTP 201, got {status}: {_decode(raw)}")
    file_id = json.loads(raw)["id"]
    body = {"text": "my answers", "material_ids": [file_id]}
    headers = {"Idempotency-Key": f"submit-{s.run}"}
    first_id, second_id = s.values["homework"]
    path = f"/api/v1/homework/{first_id}/submissions"
    one = s.expect(s.call("POST", path, body, as_user="student", headers=headers), 201, "student submits")
    again = s.expect(s.call("POST", path, body, as_user="student", headers=headers), 201, "the same submission again")
    if one["id"] != again["id"]:
        raise StepFailed(f"a repeated Idempotency-Key should answer the first submission: {one} vs {again}")
    s.expect(s.call("POST", path, body, as_user="tutor"), 403, "the tutor submits for the student")
    status, raw, _ = _raw(s, "GET", f"/api/v1/materials/{file_id}/download", as_user="tutor")
    if status != 200 or raw != answers:
        raise StepFailed(f"the tutor should get the student's file byte for byte: HTTP {status}")
    status, _, _ = _raw(s, "GET", f"/api/v1/materials/{file_id}/download", as_user="other")
    if status != 404:
        raise StepFailed(f"another tutor must not see the student's file: HTTP {status}")
    s.expect(
        s.call("POST", f"/api/v1/homework/{second_id}/submissions", {"text": "essay"}, as_user="student"),
        201,
        "student submits the essay",
    )
    return f"submission {one['id']} with the student's file {file_id}; the tutor reads it, another tutor cannot"


def step_tutor_grades_homework(s: Scenario) -> str:
    grades = dict(zip(s.values["homework"], (4, 5), strict=True))
    for homework_id, grade in grades.items():
        graded = s.expect(
            s.call(
                "POST",
                f"/api/v1/homework/{homework_id}/grade",
                {"grade": grade, "comment": "good"},
                as_user="tutor",
                headers={"Idempotency-Key": f"grade-{s.run}-{homework_id}"},
            ),
            200,
            f"tutor grades {grade}",
        )
        if (graded["status"], graded["grade"]) != ("graded", grade):
            raise StepFailed(f"the homework should be graded {grade}: {graded}")
    first = next(iter(grades))
    s.expect(s.call("POST", f"/api/v1/homework/{first}/grade", {"grade": 3}, as_user="tutor"), 409, "grading twice")
    s.expect(
        s.call("POST", f"/api/v1/homework/{first}/grade", {"grade": 5}, as_user="student"), 403, "a student grades"
    )
    listed = s.expect(s.call("GET", "/api/v1/homework?status=graded", as_user="student"), 200, "graded homework")
    seen = {item["id"]: item["grade"] for item in listed["items"]}
    if any(seen.get(homework_id) != grade for homework_id, grade in grades.items()):
        raise StepFailed(f"the student should see grades {grades}: {seen}")
    return "graded 4 and 5; a second grade → 409"


# --- materials: multipart by hand (the standard library has no multipart encoder) ------------

MATERIAL_BYTES = b"%PDF-1.4\n% RepitBot system test\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"


def _multipart(fields: dict[str, str], filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = f"repitbot-{uuid.uuid4().hex}"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + content
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _raw(
    s: Scenario,
    method: str,
    path: str,
    *,
    as_user: str,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, dict[str, str]]:
    """A call whose body is not JSON (an upload, a download): status, the exact bytes, headers (lower-case names)."""
    request = urllib.request.Request(s.base_url.rstrip("/") + path, data=data, method=method)
    request.add_header("X-Correlation-ID", f"system-{s.run}")
    request.add_header("Authorization", f"Bearer {s.tokens[as_user]}")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, reply.read(), {k.lower(): v for k, v in reply.headers.items()}
    except urllib.error.HTTPError as error:
        return error.code, error.read(), {k.lower(): v for k, v in error.headers.items()}


def step_tutor_uploads_a_material(s: Scenario) -> str:
    body, content_type = _multipart(
        {"title": "Linear equations", "subject": "maths", "grade": "7", "tags": "algebra"},
        "Линейные уравнения.pdf",
        MATERIAL_BYTES,
    )
    status, raw, _ = _raw(
        s, "POST", "/api/v1/materials", as_user="tutor", data=body, headers={"Content-Type": content_type}
    )
    if status != 201:
        raise StepFailed(f"tutor uploads a material: expected HTTP 201, got {status}: {_decode(raw)}")
    material = json.loads(raw)
    if material["sha256"] != hashlib.sha256(MATERIAL_BYTES).hexdigest() or material["size"] != len(MATERIAL_BYTES):
        raise StepFailed(f"the material should be named by its bytes' SHA-256 and size: {material}")
    s.ids["material"] = material["id"]
    return f"material {material['id']} ({material['size']} bytes, {material['content_type']})"


def step_tutor_shares_the_material_with_the_student(s: Scenario) -> str:
    path = f"/api/v1/materials/{s.ids['material']}"
    status, _, _ = _raw(s, "GET", f"{path}/download", as_user="student")
    if status != 404:
        raise StepFailed(f"the student should not see an unshared material: got HTTP {status}")
    shared = s.expect(
        s.call("POST", f"{path}/share", {"student_ids": [s.ids["student"]]}, as_user="tutor"), 200, "tutor shares"
    )
    if s.ids["student"] not in shared["shared_with"]:
        raise StepFailed(f"the material should be shared with the student: {shared}")
    s.expect(
        s.call("POST", f"{path}/share", {"student_ids": [s.ids["student"]]}, as_user="other"),
        404,
        "another tutor shares the material",
    )
    return "shared with the student"


def step_student_downloads_the_material(s: Scenario) -> str:
    path = f"/api/v1/materials/{s.ids['material']}/download"
    status, raw, headers = _raw(s, "GET", path, as_user="student")
    if status != 200 or raw != MATERIAL_BYTES:
        raise StepFailed(f"the student should download the exact bytes: HTTP {status}, {len(raw)} bytes")
    if "filename*=UTF-8''" not in headers.get("content-disposition", ""):
        raise StepFailed(f"the download should name the file: {headers}")
    status, raw, _ = _raw(s, "GET", path, as_user="student", headers={"Range": "bytes=0-7"})
    if status != 206 or raw != MATERIAL_BYTES[:8]:
        raise StepFailed(f"a range should answer 206 with those bytes: HTTP {status}, {raw!r}")
    return f"{len(MATERIAL_BYTES)} bytes, byte for byte; a range → 206"


def step_another_tutors_student_is_refused_the_material(s: Scenario) -> str:
    invite = s.expect(
        s.call("POST", "/api/v1/users/invites", {"role": "student"}, as_user="other"), 201, "the other tutor invites"
    )
    body = s.expect(
        s.call(
            "POST",
            "/api/v1/auth/register",
            {
                "email": s.email("other-student"),
                "password": PASSWORD,
                "full_name": "Other Student",
                "invite_code": invite["code"],
            },
        ),
        201,
        "the other tutor's student registers",
    )
    s.tokens["other_student"] = body["access_token"]
    path = f"/api/v1/materials/{s.ids['material']}/download"
    for who in ("other_student", "other"):
        status, _, _ = _raw(s, "GET", path, as_user=who)
        if status != 404:
            raise StepFailed(f"{who} should get 404 for the material, got HTTP {status}")
    return "another tutor and their student get 404"


def step_the_student_earns_the_tables_xp_for_the_lesson(s: Scenario) -> str:
    """The lesson completed with grade 5 earns exactly the table's XP once (regular 100 + grade-5 bonus
    100), the first-lesson achievement and level 2 or more (other awards of the scenario add to it)."""
    lesson_id = s.values["completed_lesson"]
    path = f"/api/v1/students/{s.ids['student']}"

    def lesson_awards() -> list[dict[str, Any]]:
        history = s.expect(s.call("GET", f"{path}/xp?limit=200", as_user="student"), 200, "the student's XP history")
        return [item for item in history["items"] if item["source"] == "lesson" and item["source_id"] == lesson_id]

    awards = _wait_until(lesson_awards, "the completed lesson's XP")
    if [award["amount"] for award in awards] != [200]:
        raise StepFailed(f"the lesson graded 5 should earn 200 XP once: {awards}")

    def settled() -> dict[str, Any] | None:
        profile = s.expect(s.call("GET", f"{path}/profile", as_user="tutor"), 200, "the student's profile")
        return profile if "first_lesson" in {a["code"] for a in profile["achievements"]} else None

    profile = _wait_until(settled, "the first-lesson achievement")
    if profile["level"] < 2 or profile["xp"] < 200:
        raise StepFailed(f"200 XP is level 2 at least: {profile}")
    mine = s.expect(s.call("GET", "/api/v1/students/me/profile", as_user="student"), 200, "the student's own profile")
    if mine["student_id"] != s.ids["student"]:
        raise StepFailed(f"me is the student: {mine}")
    s.expect(s.call("GET", f"{path}/profile", as_user="other"), 404, "another tutor reads the profile")
    return f"lesson {lesson_id}: 200 XP once, first_lesson, level {profile['level']} ({profile['xp']} XP)"


def step_analytics_shows_the_tutors_income(s: Scenario) -> str:
    # the charges were made today; a day either side covers any tutor's time zone
    today = datetime.now(UTC).date()
    path = f"/api/v1/analytics/tutors/me/summary?from={today - timedelta(days=1)}&to={today + timedelta(days=1)}"
    expected = [{"currency": "RUB", "amount": 2 * PRICE}]  # the completed lesson and the late cancellation
    seen: dict[str, Any] = {}

    def settled() -> bool:
        seen["summary"] = s.expect(s.call("GET", path, as_user="tutor"), 200, "the tutor's analytics")
        return bool(seen["summary"]["income"] == expected)

    try:
        _wait_until(settled, "analytics to count both charges")
    except StepFailed as exc:
        raise StepFailed(f"{exc}: income {seen.get('summary', {}).get('income')}, expected {expected}") from None
    s.expect(s.call("GET", path, as_user="student"), 404, "a student reads the tutor's analytics")
    progress = f"/api/v1/analytics/students/{s.ids['student']}/progress"
    s.expect(s.call("GET", progress, as_user="tutor"), 200, "the tutor reads the student's progress")
    return f"income {2 * PRICE} = the two charges; a student gets 404"


def step_bad_input_is_refused(s: Scenario) -> str:
    missing = s.call("POST", "/api/v1/auth/register", {"email": s.email("x")})
    s.expect(missing, 422, "register without a password")
    fields = {d["field"] for d in missing.body["error"]["details"]}
    if "password" not in fields:
        raise StepFailed(f"the 422 should name the missing field, got {fields}")
    s.expect(
        s.call(
            "POST", "/api/v1/auth/register", {"email": s.email("tutor"), "password": PASSWORD, "full_name": "Duplicate"}
        ),
        409,
        "a duplicate email",
    )
    return "422 names the field; duplicate → 409"


def step_unlinked_tutor_loses_access(s: Scenario) -> str:
    s.expect(
        s.call("DELETE", f"/api/v1/users/students/{s.ids['student']}", as_user="tutor"),
        204,
        "tutor unlinks the student",
    )
    s.expect(
        s.call("GET", f"/api/v1/users/{s.ids['student']}", as_user="tutor"), 404, "the former tutor reads the student"
    )
    return "404 after unlinking"


# --- a scripted month (issue 9): a new tutor, student and parent; every number from DESIGN.md §6 -----

MONTH_PRICE = 150_000  # kopecks: 1,500 RUB a lesson
MONTH_TOP_UP = 2_000_000
MONTH_LESSON_GRADES = (5, 4, 5, 4, None)  # the five lessons held and completed
MONTH_HOMEWORK_GRADES = (4, 5)


def _month_statement(s: Scenario) -> list[dict[str, Any]]:
    path = f"/api/v1/payments/statements/{s.ids['m_student']}?limit=200"
    return s.expect(s.call("GET", path, as_user="m_tutor"), 200, "the month's statement")["items"]


def step_month_a_new_tutor_student_and_parent_with_a_cash_top_up(s: Scenario) -> str:
    """The top-up comes before any lesson is scheduled: it covers 0 future lessons, so its XP is
    top_up_xp(0) = 0 whatever the timing (payment-service counts the covered lessons at top-up time)."""
    tutor = s.expect(
        s.call(
            "POST",
            "/api/v1/auth/register",
            {"email": s.email("month-tutor"), "password": PASSWORD, "full_name": "Maria Sergeevna"},
        ),
        201,
        "the month's tutor registers",
    )
    s.tokens["m_tutor"], s.ids["m_tutor"] = tutor["access_token"], tutor["user"]["id"]
    for who, role in (("m_student", "student"), ("m_parent", "parent")):
        # a parent's invite names the child
        invite_body = {"role": role} | ({"student_id": s.ids["m_student"]} if role == "parent" else {})
        invite = s.expect(
            s.call("POST", "/api/v1/users/invites", invite_body, as_user="m_tutor"), 201, f"the tutor invites a {role}"
        )
        body = s.expect(
            s.call(
                "POST",
                "/api/v1/auth/register",
                {
                    "email": s.email(who.replace("_", "-")),
                    "password": PASSWORD,
                    "full_name": f"Month {role.title()}",
                    "invite_code": invite["code"],
                },
            ),
            201,
            f"the {role} registers with the invite",
        )
        if body["user"]["role"] != role:
            raise StepFailed(f"the invite's role is {role}, got {body['user']['role']}")
        s.tokens[who], s.ids[who] = body["access_token"], body["user"]["id"]
    s.expect(
        s.call("PUT", "/api/v1/payments/prices/default", {"amount": MONTH_PRICE, "currency": "RUB"}, as_user="m_tutor"),
        200,
        "the tutor sets the default lesson price",
    )
    top_up = {"student_id": s.ids["m_student"], "amount": MONTH_TOP_UP, "currency": "RUB", "method": "cash"}
    key = {"Idempotency-Key": f"month-top-up-{s.run}"}

    def recorded() -> Any:
        # the key makes a retry (while payment-service learns of the new link) record nothing twice
        reply = s.call("POST", "/api/v1/payments/top-ups", top_up, as_user="m_tutor", headers=key)
        return reply.body if reply.status == 201 else None

    entry = _wait_until(recorded, "the cash top-up")
    if [(row["kind"], row["amount"]) for row in _month_statement(s)] != [("top_up", MONTH_TOP_UP)]:
        raise StepFailed(f"one cash top-up of {MONTH_TOP_UP} expected: {entry}")
    return f"tutor, student and parent; price {MONTH_PRICE}; cash top-up {MONTH_TOP_UP} before any lesson"


def step_month_eight_weekly_lessons_six_of_them_already_held(s: Scenario) -> str:
    """Lesson-service records lessons already held (a start in the past), but a student cannot cancel a
    lesson that has started (409 lesson_started) and lateness is ``starts_at - now < 24 h``. So the
    series is 8 weekly lessons whose 7th starts in ~3 hours: lessons 1-6 lie in the past (5 completed,
    1 no-show), the 7th is inside the late window (the student's late cancellation), the 8th a week
    later (the student's early, free cancellation)."""
    seventh = (datetime.now(UTC) + timedelta(hours=3)).replace(second=0, microsecond=0)
    first = seventh - timedelta(weeks=6)
    lessons = _weekly_series(
        s,
        "m_student",
        "m_tutor",
        first,
        8,
        "the tutor schedules 8 weekly lessons from six weeks ago",
        timezone="UTC",  # weekly in UTC: the weekday code is the UTC one
    )
    starts = [datetime.fromisoformat(item["starts_at"]) for item in lessons]
    if starts != [first + timedelta(weeks=week) for week in range(8)]:
        raise StepFailed(f"8 weekly lessons from {first} expected: {starts}")
    s.values["month_lessons"] = [item["id"] for item in lessons]
    return f"8 weekly lessons from {first:%d %b %H:%M} UTC, six already held"


def step_month_five_lessons_completed_and_a_no_show(s: Scenario) -> str:
    held = s.values["month_lessons"]
    for lesson_id, grade in zip(held[:5], MONTH_LESSON_GRADES, strict=True):
        body = {} if grade is None else {"grade": grade}
        done = s.expect(
            s.call("POST", f"/api/v1/lessons/{lesson_id}/complete", body, as_user="m_tutor"),
            200,
            f"the tutor completes a held lesson (grade {grade})",
        )
        if (done["status"], done["grade"], done["chargeable"]) != ("completed", grade, True):
            raise StepFailed(f"a completed, chargeable lesson with grade {grade} expected: {done}")
    missed = s.expect(
        s.call("POST", f"/api/v1/lessons/{held[5]}/missed", {"reason": "did not come"}, as_user="m_tutor"),
        200,
        "the tutor marks a no-show",
    )
    if (missed["status"], missed["attendance"], missed["chargeable"]) != ("missed", "absent", True):
        raise StepFailed(f"a chargeable no-show expected: {missed}")
    return f"completed with grades {MONTH_LESSON_GRADES}; one no-show"


def step_month_the_student_cancels_late_and_early(s: Scenario) -> str:
    lessons = s.values["month_lessons"]
    for lesson_id, what, chargeable in ((lessons[6], "late", True), (lessons[7], "early", False)):
        cancelled = s.expect(
            s.call("POST", f"/api/v1/lessons/{lesson_id}/cancel", {"reason": "ill"}, as_user="m_student"),
            200,
            f"the student cancels the {what} lesson",
        )
        if (cancelled["status"], cancelled["chargeable"]) != ("cancelled", chargeable):
            raise StepFailed(f"the {what} cancellation should be chargeable={chargeable}: {cancelled}")
    s.expect(
        s.call("POST", f"/api/v1/lessons/{lessons[0]}/cancel", {"reason": "too late"}, as_user="m_student"),
        409,
        "the student cancels a lesson already held",
    )
    return "late cancellation chargeable, early one free"


def step_month_homework_graded_4_and_5_and_a_material_viewed(s: Scenario) -> str:
    due = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0).isoformat()
    homework_ids = []
    for grade in MONTH_HOMEWORK_GRADES:
        homework = s.expect(
            s.call(
                "POST",
                "/api/v1/homework",
                {"student_id": s.ids["m_student"], "title": f"Set {grade}", "description": "page 42", "due_at": due},
                as_user="m_tutor",
            ),
            201,
            "the tutor assigns homework",
        )
        path = f"/api/v1/homework/{homework['id']}"
        s.expect(s.call("POST", f"{path}/submissions", {"text": "done"}, as_user="m_student"), 201, "submit")
        graded = s.expect(s.call("POST", f"{path}/grade", {"grade": grade}, as_user="m_tutor"), 200, f"grade {grade}")
        if (graded["status"], graded["grade"]) != ("graded", grade):
            raise StepFailed(f"the homework should be graded {grade}: {graded}")
        homework_ids.append(homework["id"])
    upload, content_type = _multipart({"title": "Fractions"}, "fractions.pdf", MATERIAL_BYTES)
    status, raw, _ = _raw(
        s, "POST", "/api/v1/materials", as_user="m_tutor", data=upload, headers={"Content-Type": content_type}
    )
    if status != 201:
        raise StepFailed(f"the tutor uploads a material: expected HTTP 201, got {status}: {_decode(raw)}")
    material_id = json.loads(raw)["id"]
    s.expect(
        s.call(
            "POST", f"/api/v1/materials/{material_id}/share", {"student_ids": [s.ids["m_student"]]}, as_user="m_tutor"
        ),
        200,
        "the tutor shares the material",
    )
    for _ in range(2):  # viewed twice: the XP is once per material
        status, raw, _ = _raw(s, "GET", f"/api/v1/materials/{material_id}/download", as_user="m_student")
        if status != 200 or raw != MATERIAL_BYTES:
            raise StepFailed(f"the student should download the material: HTTP {status}")
    s.values["month_homework"], s.values["month_material"] = homework_ids, material_id
    return "homework graded 4 and 5; a material viewed (twice)"


def step_month_balance_is_the_top_up_less_seven_charges(s: Scenario) -> str:
    """Charged: 5 completed + 1 late cancellation + 1 no-show = 7 lessons; the early cancellation is free.
    Balance = 2,000,000 − 7 × 150,000 = 2,000,000 − 1,050,000 = 950,000 kopecks; the parent sees it too."""
    lessons = s.values["month_lessons"]
    expected_kinds = {lesson_id: "lesson_charge" for lesson_id in lessons[:5]}
    expected_kinds |= {lessons[5]: "no_show_charge", lessons[6]: "late_cancel_charge"}
    expected_balance = MONTH_TOP_UP - 7 * MONTH_PRICE
    assert expected_balance == 950_000

    def charges() -> list[dict[str, Any]]:
        rows = [row for row in _month_statement(s) if row["kind"].endswith("charge")]
        return rows if len(rows) >= len(expected_kinds) else []

    rows = _wait_until(charges, "the seven charges")
    seen = sorted((row["lesson_id"], row["kind"], row["amount"]) for row in rows)
    if seen != sorted((lesson_id, kind, -MONTH_PRICE) for lesson_id, kind in expected_kinds.items()):
        raise StepFailed(f"one charge of {MONTH_PRICE} per charged lesson, none for the early one: {seen}")
    path = f"/api/v1/payments/balances/{s.ids['m_student']}"
    balances = {
        who: s.expect(s.call("GET", path, as_user=who), 200, f"the {who}'s balance")["balance"]
        for who in ("m_tutor", "m_student")
    }

    def parents_view() -> Any:
        reply = s.call("GET", path, as_user="m_parent")  # the parent's link reaches payment-service by event
        return reply.body if reply.status == 200 and reply.body.get("tutor_id") else None

    balances["m_parent"] = _wait_until(parents_view, "the parent's view of the balance")["balance"]
    if set(balances.values()) != {expected_balance}:
        raise StepFailed(f"balance {expected_balance} for tutor, student and parent expected: {balances}")
    s.values["month_charges"] = -sum(row["amount"] for row in rows)
    return f"balance {MONTH_TOP_UP} − 7 × {MONTH_PRICE} = {expected_balance}, the parent sees the same"


def step_month_xp_level_and_achievements_follow_the_table(s: Scenario) -> str:
    """DESIGN.md §6, services/student_service/domain/xp.py:
    lessons: grade 5 → 100 + 100 = 200 (twice), grade 4 → 100 + 50 = 150 (twice), no grade → 100:
             200 + 150 + 200 + 150 + 100 = 800; the no-show and the cancellations earn nothing
    homework: grade 4 → 50 + 25 = 75, grade 5 → 50 + 50 = 100: 175
    material: 25, once although viewed twice
    top-up: 50 × 0 covered future lessons = 0 (it came before any lesson was scheduled)
    total 800 + 175 + 25 + 0 = 1,000 XP; level 5, since floor(100 × 4 ** 1.5) = 800 ≤ 1,000 <
    floor(100 × 5 ** 1.5) = 1,118.
    Achievements (domain/achievements.py): first_lesson (1 lesson), first_homework (1 homework),
    first_material (1 material), first_excellent_lesson (a lesson graded 5), level_5; no other target
    is reached (50 lessons, 10 excellent homeworks, level 10, a 7-day streak, ...)."""
    lessons, homework = s.values["month_lessons"], s.values["month_homework"]
    expected = {
        ("lesson", lesson_id): 200 if grade == 5 else 150 if grade == 4 else 100
        for lesson_id, grade in zip(lessons[:5], MONTH_LESSON_GRADES, strict=True)
    }
    expected |= {("homework", homework[0]): 75, ("homework", homework[1]): 100}
    total = sum(expected.values()) + 25
    assert total == 1_000
    level = max(n for n in range(1, 51) if math.floor(100 * (n - 1) ** 1.5) <= total)
    assert level == 5
    path = f"/api/v1/students/{s.ids['m_student']}"

    def history() -> list[dict[str, Any]]:
        body = s.expect(s.call("GET", f"{path}/xp?limit=200", as_user="m_student"), 200, "the XP history")
        return body["items"] if len(body["items"]) >= len(expected) + 1 else []

    items = _wait_until(history, "XP for 5 lessons, 2 homework and a material")
    by_source = sorted(
        (item["source"], item["source_id"], item["amount"]) for item in items if item["source"] != "material"
    )
    materials = [item["amount"] for item in items if item["source"] == "material"]
    if by_source != sorted(
        (source, source_id, amount) for (source, source_id), amount in expected.items()
    ) or materials != [25]:
        raise StepFailed(f"the table's awards expected, each once, no top-up XP: {items}")
    profile = s.expect(s.call("GET", f"{path}/profile", as_user="m_tutor"), 200, "the student's profile")
    unlocked = {a["code"] for a in profile["achievements"]}
    wanted = {"first_lesson", "first_homework", "first_material", "first_excellent_lesson", "level_5"}
    if (profile["xp"], profile["level"], unlocked) != (total, level, wanted):
        raise StepFailed(f"{total} XP, level {level} and {sorted(wanted)} expected: {profile}")
    return f"{total} XP, level {level}, {', '.join(sorted(wanted))}"


def step_month_analytics_income_equals_the_ledgers_charges(s: Scenario) -> str:
    """Income = the ledger's charges: 7 × 150,000 = 1,050,000 (no charge given back)."""
    charged = s.values["month_charges"]
    if charged != 7 * MONTH_PRICE:
        raise StepFailed(f"the ledger's charges should be 7 × {MONTH_PRICE}: {charged}")
    # analytics dates a charge by when it was made (today); a day either side covers any time zone
    today = datetime.now(UTC).date()
    path = f"/api/v1/analytics/tutors/me/summary?from={today - timedelta(days=1)}&to={today + timedelta(days=1)}"
    expected = [{"currency": "RUB", "amount": charged}]
    seen: dict[str, Any] = {}

    def settled() -> bool:
        seen["summary"] = s.expect(s.call("GET", path, as_user="m_tutor"), 200, "the tutor's analytics")
        return bool(seen["summary"]["income"] == expected)

    try:
        _wait_until(settled, "analytics to count the seven charges")
    except StepFailed as exc:
        raise StepFailed(f"{exc}: income {seen.get('summary', {}).get('income')}, expected {expected}") from None
    return f"income {charged} = the ledger's charges"


def step_month_reminders_for_every_future_lesson_and_none_for_the_cancelled(s: Scenario) -> str:
    """The tutor books the two weeks after the month (same weekday and time). notification-service plans
    reminders for each at T−24 h and T−1 h, for the student and for the parent (the default offsets,
    neither has set others); the month's two cancelled lessons have no reminder left to send."""
    month = s.values["month_lessons"]
    eighth = datetime.fromisoformat(
        s.expect(s.call("GET", f"/api/v1/lessons/{month[-1]}", as_user="m_tutor"), 200, "the 8th lesson")["starts_at"]
    )
    upcoming = _weekly_series(
        s, "m_student", "m_tutor", eighth + timedelta(weeks=1), 2, "the tutor books the next two weeks", timezone="UTC"
    )
    people = {s.ids["m_student"], s.ids["m_parent"]}
    for lesson in upcoming:
        start = datetime.fromisoformat(lesson["starts_at"])

        def planned(lesson_id: str = lesson["id"]) -> list[dict[str, Any]]:
            items = _reminders(s, lesson_id, as_user="m_tutor")
            return items if len(items) == 2 * len(people) else []

        reminders = _wait_until(planned, f"the reminders of the lesson on {start:%d %b}")
        seen = sorted((x["user_id"], datetime.fromisoformat(x["due_at"]), x["status"]) for x in reminders)
        expected = sorted(
            (person, start - offset, "pending")
            for person in people
            for offset in (timedelta(hours=24), timedelta(hours=1))
        )
        if seen != expected:
            raise StepFailed(f"T−24 h and T−1 h for the student and the parent expected: {reminders}")
    for lesson_id in month[6:]:  # cancelled late and early
        left = [x for x in _reminders(s, lesson_id, as_user="m_tutor") if x["status"] == "pending"]
        if left:
            raise StepFailed(f"a cancelled lesson still has reminders to send: {left}")
    return "the next two lessons: T−24 h and T−1 h for the student and the parent; the cancelled ones: none"


STEPS: list[Callable[[Scenario], str]] = [
    step_fleet_is_up,
    step_tutor_registers,
    step_tutor_logs_in_and_refreshes,
    step_me,
    step_student_joins_by_invite,
    step_tutor_sees_the_student,
    step_strangers_see_nothing,
    step_tutor_sets_a_price_and_records_a_top_up,
    step_tutor_schedules_a_weekly_series,
    step_tutor_schedules_and_completes_a_lesson,
    step_a_completed_lesson_is_charged_exactly_once,
    step_a_late_cancellation_is_charged_and_an_early_one_is_not,
    step_reminders_for_the_next_lesson_and_none_for_a_cancelled_one,
    step_tutor_assigns_homework,
    step_student_submits_homework,
    step_tutor_grades_homework,
    step_tutor_uploads_a_material,
    step_tutor_shares_the_material_with_the_student,
    step_student_downloads_the_material,
    step_another_tutors_student_is_refused_the_material,
    step_the_student_earns_the_tables_xp_for_the_lesson,
    step_analytics_shows_the_tutors_income,
    step_bad_input_is_refused,
    step_unlinked_tutor_loses_access,
    step_month_a_new_tutor_student_and_parent_with_a_cash_top_up,
    step_month_eight_weekly_lessons_six_of_them_already_held,
    step_month_five_lessons_completed_and_a_no_show,
    step_month_the_student_cancels_late_and_early,
    step_month_homework_graded_4_and_5_and_a_material_viewed,
    step_month_balance_is_the_top_up_less_seven_charges,
    step_month_xp_level_and_achievements_follow_the_table,
    step_month_analytics_income_equals_the_ledgers_charges,
    step_month_reminders_for_every_future_lesson_and_none_for_the_cancelled,
]


def run(base_url: str) -> int:
    scenario = Scenario(base_url)
    print(f"RepitBot system test against {base_url} (run {scenario.run})")
    for number, step in enumerate(STEPS, 1):
        name = step.__name__.removeprefix("step_").replace("_", " ")
        try:
            outcome = step(scenario)
        except (StepFailed, OSError, KeyError) as error:
            print(f"  {number:2}. FAIL  {name}: {error}")
            return 1
        print(f"  {number:2}. ok    {name}: {outcome}")
    print(f"{len(STEPS)} passed, 0 failed")
    return 0


# --- pytest: the same steps, in order, against the test fleet -------------------------------

try:
    import pytest
except ImportError:  # plain `python3 test_microservices_system.py` needs nothing but the standard library
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="module")
    def scenario(fleet) -> Scenario:  # type: ignore[no-untyped-def]
        return Scenario(fleet.url("api-gateway"))  # clients come through the gateway

    @pytest.mark.parametrize("step", STEPS, ids=lambda step: step.__name__.removeprefix("step_"))
    def test_system_step(scenario: Scenario, step: Callable[[Scenario], str]) -> None:
        if scenario.values.get("failed"):
            pytest.fail(f"an earlier step failed: {scenario.values['failed']}")
        try:
            step(scenario)
        except Exception:
            scenario.values["failed"] = step.__name__
            raise


if __name__ == "__main__":
    sys.exit(run(os.environ.get("GATEWAY_URL", "http://localhost:8000")))
