"""Real accounts on a running fleet, made through the gateway as a client would: register, invite,
and the usual cast of an access-matrix test (two tutors, a student and a parent of the first, a
student of the second, and nobody)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Account:
    id: str
    role: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


ANONYMOUS = Account(id="", role="anonymous", token="")


async def register(gateway: httpx.AsyncClient, who: str, invite_code: str | None = None, **fields: Any) -> Account:
    """A new account named ``who``: a tutor, or with an invite its role, linked to the inviting tutor."""
    body: dict[str, Any] = {
        "email": f"{who.replace(' ', '-')}-{uuid.uuid4().hex[:10]}@example.test",
        "password": PASSWORD,
        "full_name": who.title(),
        **fields,
    }
    if invite_code:
        body["invite_code"] = invite_code
    response = await gateway.post("/api/v1/auth/register", json=body)
    assert response.status_code == 201, response.text
    data = response.json()
    return Account(data["user"]["id"], data["user"]["role"], data["access_token"])


async def invite(gateway: httpx.AsyncClient, tutor: Account, role: str, student_id: str | None = None) -> str:
    """An invite code from ``tutor`` for a student, or for a parent of ``student_id``."""
    body: dict[str, Any] = {"role": role} | ({"student_id": student_id} if student_id else {})
    response = await gateway.post("/api/v1/users/invites", json=body, headers=tutor.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["code"])


@dataclass(frozen=True)
class Cast:
    tutor_a: Account
    tutor_b: Account
    student: Account  # tutor A's
    parent: Account  # of ``student``
    student_b: Account  # tutor B's

    def matrix(self) -> dict[str, Account]:
        """Who an access-matrix test tries, by name."""
        return {
            "tutor_a": self.tutor_a,
            "tutor_b": self.tutor_b,
            "student": self.student,
            "parent": self.parent,
            "student_b": self.student_b,
            "anonymous": ANONYMOUS,
        }


async def cast(gateway: httpx.AsyncClient) -> Cast:
    tutor_a, tutor_b = await register(gateway, "tutor a"), await register(gateway, "tutor b")
    student = await register(gateway, "student", await invite(gateway, tutor_a, "student"))
    parent = await register(gateway, "parent", await invite(gateway, tutor_a, "parent", student.id))
    student_b = await register(gateway, "student b", await invite(gateway, tutor_b, "student"))
    return Cast(tutor_a, tutor_b, student, parent, student_b)
