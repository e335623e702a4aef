"""The expected authorisation matrix: every operation the gateway serves × eight actors.

tests/test_authorisation_matrix.py reads the operations from the gateway's combined
``/openapi.json`` and fails for one without a row here (add one, saying who may call it and why)
and for a row whose operation is gone. Each row says who is allowed; everyone else is denied
(anonymous: 401; anyone signed in: 403 or 404, DESIGN.md §4 "anyone else gets 404").

The world the requests are made in is tutor A's (see ``World``): path parameters name A's student,
lesson, homework, material and A themself unless a row says otherwise, and a query filter that
names a student names A's. So ``tutor_b`` and ``student_b`` are the other tenant, who must be refused
anything of A's. A row with ``fresh`` changes or ends what it acts on (cancel, delete, grade...):
every allowed actor gets a new resource of that kind, while denied actors (who are tried first)
all aim at the shared one, which must come out unchanged.

Where each rule is written: DESIGN.md §3-4 and docs/CONTRACTS.md (who sees a student: the student,
their tutor and parents, admins and service accounts; anyone else 404; admins may read everything
and change nothing that is not theirs), and each route's docstring or guard.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

TUTOR_A, TUTOR_B = "tutor_a", "tutor_b"
STUDENT_A, STUDENT_B = "student_a", "student_b"  # tutor A's student, tutor B's student
PARENT_A = "parent_a"  # a parent of student A
ADMIN, BOT, ANONYMOUS = "admin", "bot", "anonymous"  # bot: the telegram-bot client-credentials token
ACTORS = (TUTOR_A, TUTOR_B, STUDENT_A, STUDENT_B, PARENT_A, ADMIN, BOT, ANONYMOUS)
OTHER_TENANT = (TUTOR_B, STUDENT_B)  # what they are allowed must show nothing of A's world


def actors(*names: str) -> frozenset[str]:
    unknown = set(names) - set(ACTORS)
    assert not unknown, unknown
    return frozenset(names)


EVERYONE = actors(*ACTORS)
PERSONS = actors(TUTOR_A, TUTOR_B, STUDENT_A, STUDENT_B, PARENT_A, ADMIN)  # a user's token, any role
TUTORS = actors(TUTOR_A, TUTOR_B)  # a tutor's own things (B gets B's, never A's)
# who sees student A (shared/auth/access.py): the student, their tutor and parent, admins, service accounts
SEES_STUDENT_A = actors(TUTOR_A, STUDENT_A, PARENT_A, ADMIN, BOT)
# the same, on routes for people (shared.auth.deps.Person): not the bot's service token
PERSONS_SEEING_STUDENT_A = actors(TUTOR_A, STUDENT_A, PARENT_A, ADMIN)
ONLY_TUTOR_A = actors(TUTOR_A)


@dataclass
class World:
    """Ids of tutor A's world (and what else a request needs), filled in by the test's setup."""

    tutor_a: str
    tutor_b: str
    student_a: str
    student_b: str
    parent_a: str
    lesson: str  # scheduled, days ahead, with its reminders
    homework: str  # assigned, handed in once by student A
    material: str  # tutor A's file, shared with student A
    payment: str  # tutor A's top-up for student A
    feed_token: str  # the calendar feed of a spare student of A (nobody among the actors)
    login_email: str  # that spare student's credentials
    login_password: str
    bot_client_id: str
    bot_client_secret: str
    _slots: itertools.count[int] = field(default_factory=itertools.count)
    _base: datetime = field(default_factory=lambda: datetime.now(UTC).replace(minute=0, second=0, microsecond=0))

    def slot(self, *, days: int = 40) -> str:
        """A start time no other lesson of tutor A's has (two hours apart), ``days`` from now."""
        return (self._base + timedelta(days=days, hours=2 * next(self._slots))).isoformat()


@dataclass(frozen=True)
class Ctx:
    """What a row's request is built from: the world, who calls, and the resource acted on."""

    w: World
    actor: str
    resource: str  # a fresh one for an allowed actor of a ``fresh`` row, else the shared one


Build = Callable[[Ctx], Any]


@dataclass(frozen=True)
class Row:
    allowed: frozenset[str]
    why: str
    path: Build | None = None  # path parameters beyond the defaults (``path_defaults``)
    query: Build | None = None
    json: Build | None = None
    upload: bool = False  # a multipart file upload (material-service)
    fresh: str | None = None  # the kind of resource each allowed actor gets anew (see the test's World)
    public: bool = False  # open to all, or the credential travels in the request itself


def path_defaults(w: World) -> dict[str, str]:
    return {
        "student_id": w.student_a,
        "lesson_id": w.lesson,
        "homework_id": w.homework,
        "material_id": w.material,
        "tutor_id": w.tutor_a,
        "user_id": w.student_a,
    }


def a_ids(w: World) -> dict[str, str]:
    """Ids that no answer to the other tenant may contain."""
    return {
        "tutor A": w.tutor_a,
        "student A": w.student_a,
        "parent A": w.parent_a,
        "lesson": w.lesson,
        "homework": w.homework,
        "material": w.material,
        "payment": w.payment,
    }


def _lesson(c: Ctx, **extra: Any) -> dict[str, Any]:
    return {"student_id": c.w.student_a, "starts_at": c.w.slot(), "duration_minutes": 60, "subject": "Maths", **extra}


def _email(_: Ctx) -> str:
    return f"matrix-{uuid.uuid4().hex[:12]}@example.test"


EXPECTED: dict[tuple[str, str], Row] = {
    # --- the gateway's own (DESIGN.md §3: open, like any load balancer's status pages) ----------
    ("GET", "/"): Row(EVERYONE, "the gateway's name and routes", public=True),
    ("GET", "/health"): Row(EVERYONE, "liveness", public=True),
    ("GET", "/gateway/services"): Row(EVERYONE, "upstream status (DESIGN.md §3)", public=True),
    ("GET", "/gateway/metrics"): Row(EVERYONE, "breaker and limiter counters (DESIGN.md §3)", public=True),
    ("GET", "/.well-known/jwks.json"): Row(EVERYONE, "public keys", public=True),
    # --- user-service: auth (the credential is in the body) ------------------------------------
    ("POST", "/api/v1/auth/register"): Row(
        EVERYONE,
        "anyone signs up; with an invite's code (the credential) as its role, here a student of A's",
        json=lambda c: {
            "email": _email(c),
            "password": c.w.login_password,
            "full_name": "Matrix Signup",
            "invite_code": c.resource,
        },
        fresh="invite",
        public=True,
    ),
    ("POST", "/api/v1/auth/login"): Row(
        EVERYONE,
        "the password is the credential",
        json=lambda c: {"email": c.w.login_email, "password": c.w.login_password},
        public=True,
    ),
    ("POST", "/api/v1/auth/refresh"): Row(
        EVERYONE,
        "the refresh token is the credential; it rotates",
        json=lambda c: {"refresh_token": c.resource},
        fresh="refresh_token",
        public=True,
    ),
    ("POST", "/api/v1/auth/logout"): Row(
        EVERYONE,
        "the refresh token is the credential; it ends its family",
        json=lambda c: {"refresh_token": c.resource},
        fresh="refresh_token",
        public=True,
    ),
    ("POST", "/api/v1/auth/telegram"): Row(
        actors(BOT),
        "the bot's service token only (CONTRACTS: bot signs Telegram users in)",
        json=lambda c: {"telegram_id": 7_000_000_000 + uuid.uuid4().int % 10**9, "full_name": "Matrix Telegram"},
    ),
    ("POST", "/api/v1/auth/token"): Row(
        EVERYONE,
        "client credentials: the secret is the credential",
        json=lambda c: {
            "grant_type": "client_credentials",
            "client_id": c.w.bot_client_id,
            "client_secret": c.w.bot_client_secret,
        },
        public=True,
    ),
    # --- user-service: users -------------------------------------------------------------------
    ("GET", "/api/v1/users/me"): Row(PERSONS, "a person's own account"),
    ("PATCH", "/api/v1/users/me"): Row(PERSONS, "a person's own account", json=lambda c: {"timezone": "Europe/Moscow"}),
    ("GET", "/api/v1/users/me/contacts"): Row(PERSONS, "a person's own circle (CONTRACTS)"),
    ("POST", "/api/v1/users/invites"): Row(
        ONLY_TUTOR_A,
        "a tutor invites a parent of their own student (DESIGN.md §3)",
        json=lambda c: {"role": "parent", "student_id": c.w.student_a},
    ),
    ("GET", "/api/v1/users/students"): Row(TUTORS, "a tutor's own students"),
    ("DELETE", "/api/v1/users/students/{student_id}"): Row(
        ONLY_TUTOR_A,
        "a tutor lets their own student go",
        path=lambda c: {"student_id": c.resource},
        fresh="student",
    ),
    ("GET", "/api/v1/users/{user_id}"): Row(SEES_STUDENT_A, "a user the caller may see (student A)"),
    # --- lesson-service --------------------------------------------------------------------------
    ("POST", "/api/v1/lessons/calendar-feed"): Row(PERSONS, "a person's own feed URL"),
    ("DELETE", "/api/v1/lessons/calendar-feed"): Row(PERSONS, "a person's own feed URL"),
    ("GET", "/api/v1/lessons/calendar.ics"): Row(
        EVERYONE,
        "the secret token in the query is the credential (api/calendar.py)",
        query=lambda c: {"token": c.w.feed_token},
        public=True,
    ),
    ("PUT", "/api/v1/lessons/plans/{student_id}"): Row(
        ONLY_TUTOR_A, "the tutor's plan for their student", json=lambda c: {"topics": ["Fractions", "Decimals"]}
    ),
    ("GET", "/api/v1/lessons/plans/{student_id}"): Row(
        PERSONS_SEEING_STUDENT_A,
        "whoever sees the student names the tutor",
        query=lambda c: {"tutor_id": c.w.tutor_a},
    ),
    ("POST", "/api/v1/lessons"): Row(ONLY_TUTOR_A, "a tutor schedules for their student", json=_lesson),
    ("GET", "/api/v1/lessons"): Row(
        PERSONS_SEEING_STUDENT_A, "student A's lessons", query=lambda c: {"student_id": c.w.student_a}
    ),
    ("POST", "/api/v1/lessons/series"): Row(
        ONLY_TUTOR_A, "a tutor schedules for their student", json=lambda c: _lesson(c, weekdays=["MO"], count=1)
    ),
    ("GET", "/api/v1/lessons/schedule"): Row(
        PERSONS_SEEING_STUDENT_A, "student A's week", query=lambda c: {"student_id": c.w.student_a}
    ),
    ("GET", "/api/v1/lessons/{lesson_id}"): Row(SEES_STUDENT_A, "whoever sees the lesson's student"),
    ("PATCH", "/api/v1/lessons/{lesson_id}"): Row(
        ONLY_TUTOR_A, "only the lesson's tutor edits it", json=lambda c: {"topic": "Fractions"}
    ),
    ("POST", "/api/v1/lessons/{lesson_id}/cancel"): Row(
        actors(TUTOR_A, STUDENT_A, PARENT_A),
        "the tutor, the student or a parent cancels (api/lessons.py); not an admin or a service",
        path=lambda c: {"lesson_id": c.resource},
        json=lambda c: {"reason": "matrix"},
        fresh="lesson",
    ),
    ("POST", "/api/v1/lessons/{lesson_id}/excuse"): Row(
        ONLY_TUTOR_A,
        "only the lesson's tutor waives a charge",
        path=lambda c: {"lesson_id": c.resource},
        fresh="chargeable_cancellation",
    ),
    ("POST", "/api/v1/lessons/{lesson_id}/complete"): Row(
        ONLY_TUTOR_A,
        "only the lesson's tutor completes it",
        path=lambda c: {"lesson_id": c.resource},
        json=lambda c: {"grade": 5},
        fresh="lesson",
    ),
    ("POST", "/api/v1/lessons/{lesson_id}/missed"): Row(
        ONLY_TUTOR_A,
        "only the lesson's tutor records a no-show",
        path=lambda c: {"lesson_id": c.resource},
        json=lambda c: {"reason": "matrix"},
        fresh="lesson",
    ),
    # --- homework-service ------------------------------------------------------------------------
    ("POST", "/api/v1/homework"): Row(
        ONLY_TUTOR_A,
        "a tutor assigns to their student",
        json=lambda c: {"student_id": c.w.student_a, "title": "Exercises", "due_at": c.w.slot(days=20)},
    ),
    ("GET", "/api/v1/homework"): Row(
        PERSONS_SEEING_STUDENT_A, "student A's homework", query=lambda c: {"student_id": c.w.student_a}
    ),
    ("GET", "/api/v1/homework/{homework_id}"): Row(SEES_STUDENT_A, "whoever sees the homework's student"),
    ("POST", "/api/v1/homework/{homework_id}/submissions"): Row(
        actors(STUDENT_A), "only its student hands it in", json=lambda c: {"text": "my answers"}
    ),
    ("GET", "/api/v1/homework/{homework_id}/submissions"): Row(SEES_STUDENT_A, "whoever sees the homework"),
    ("POST", "/api/v1/homework/{homework_id}/grade"): Row(
        ONLY_TUTOR_A,
        "only its tutor grades, once",
        path=lambda c: {"homework_id": c.resource},
        json=lambda c: {"grade": 5, "comment": "good"},
        fresh="homework",
    ),
    ("POST", "/api/v1/homework/{homework_id}/return"): Row(
        ONLY_TUTOR_A,
        "only its tutor returns a hand-in for rework",
        path=lambda c: {"homework_id": c.resource},
        json=lambda c: {"comment": "again"},
        fresh="submitted_homework",
    ),
    # --- payment-service -------------------------------------------------------------------------
    ("POST", "/api/v1/payments/top-ups"): Row(
        ONLY_TUTOR_A,
        "a tutor records a payment from their student",
        json=lambda c: {"student_id": c.w.student_a, "amount": 1000, "currency": "RUB", "method": "cash"},
    ),
    ("POST", "/api/v1/payments/refunds"): Row(
        ONLY_TUTOR_A,
        "a tutor gives money back to their student",
        json=lambda c: {"student_id": c.w.student_a, "amount": 100, "currency": "RUB", "reason": "matrix"},
    ),
    ("POST", "/api/v1/payments/corrections"): Row(
        ONLY_TUTOR_A,
        "a tutor corrects their student's balance",
        json=lambda c: {"student_id": c.w.student_a, "amount": 100, "currency": "RUB", "reason": "matrix"},
    ),
    ("GET", "/api/v1/payments/balances/{student_id}"): Row(SEES_STUDENT_A, "whoever sees the student"),
    ("GET", "/api/v1/payments/debts"): Row(TUTORS, "a tutor's own debtors"),
    ("GET", "/api/v1/payments/prices/default"): Row(TUTORS, "a tutor's own price"),
    ("PUT", "/api/v1/payments/prices/default"): Row(
        TUTORS, "a tutor's own price", json=lambda c: {"amount": 150_000, "currency": "RUB"}
    ),
    ("PUT", "/api/v1/payments/prices/students/{student_id}"): Row(
        ONLY_TUTOR_A, "a tutor prices their own student", json=lambda c: {"amount": 120_000, "currency": "RUB"}
    ),
    ("DELETE", "/api/v1/payments/prices/students/{student_id}"): Row(
        ONLY_TUTOR_A, "a tutor removes their own student's price", fresh="student_price"
    ),
    ("GET", "/api/v1/payments/prices/students/{student_id}"): Row(SEES_STUDENT_A, "whoever sees the student"),
    ("GET", "/api/v1/payments/statements/{student_id}"): Row(SEES_STUDENT_A, "whoever sees the student"),
    ("GET", "/api/v1/payments/statements/{student_id}/monthly"): Row(SEES_STUDENT_A, "whoever sees the student"),
    ("GET", "/api/v1/payments/statements/{student_id}/export.csv"): Row(SEES_STUDENT_A, "whoever sees the student"),
    # --- material-service ------------------------------------------------------------------------
    ("POST", "/api/v1/materials"): Row(
        actors(TUTOR_A, TUTOR_B, STUDENT_A, STUDENT_B, ADMIN),
        "tutors, students (their own files) and admins upload (api/materials.py UPLOADERS)",
        upload=True,
    ),
    ("GET", "/api/v1/materials"): Row(
        EVERYONE - {ANONYMOUS}, "the materials the caller sees (the other tenant: none of A's)"
    ),
    ("GET", "/api/v1/materials/{material_id}"): Row(SEES_STUDENT_A, "owner, the students shared with, their parents"),
    ("DELETE", "/api/v1/materials/{material_id}"): Row(
        actors(TUTOR_A, ADMIN),
        "the owner or an admin deletes (api/materials.py)",
        path=lambda c: {"material_id": c.resource},
        fresh="material",
    ),
    ("POST", "/api/v1/materials/{material_id}/share"): Row(
        ONLY_TUTOR_A, "only the owning tutor shares", json=lambda c: {"student_ids": [c.w.student_a]}
    ),
    ("GET", "/api/v1/materials/{material_id}/download"): Row(SEES_STUDENT_A, "whoever sees the material"),
    # --- notification-service (CONTRACTS: own; admins read anyone's with ?user_id=) -------------
    ("GET", "/api/v1/notifications/preferences"): Row(
        actors(STUDENT_A, ADMIN), "student A's own, or an admin's reading", query=lambda c: {"user_id": c.w.student_a}
    ),
    ("PUT", "/api/v1/notifications/preferences"): Row(
        PERSONS, "a person's own preferences", json=lambda c: {"reminder_offsets_minutes": [60]}
    ),
    ("GET", "/api/v1/notifications/deliveries"): Row(
        actors(STUDENT_A, ADMIN), "student A's own, or an admin's reading", query=lambda c: {"user_id": c.w.student_a}
    ),
    ("GET", "/api/v1/notifications/reminders"): Row(
        SEES_STUDENT_A, "whoever sees the lesson's student", query=lambda c: {"lesson_id": c.w.lesson}
    ),
    # --- analytics-service -----------------------------------------------------------------------
    ("GET", "/api/v1/analytics/tutors/{tutor_id}/summary"): Row(
        actors(TUTOR_A, ADMIN), "the tutor themself or an admin"
    ),
    ("GET", "/api/v1/analytics/tutors/{tutor_id}/income"): Row(
        actors(TUTOR_A, ADMIN), "the tutor themself or an admin"
    ),
    ("GET", "/api/v1/analytics/students/{student_id}/progress"): Row(SEES_STUDENT_A, "whoever sees the student"),
    # --- student-service (CONTRACTS' game table) -------------------------------------------------
    ("GET", "/api/v1/students/leaderboard"): Row(
        actors(TUTOR_A, STUDENT_A, ADMIN),
        "tutor A's board: its students, the tutor, an admin",
        query=lambda c: {"tutor_id": c.w.tutor_a},
    ),
    ("GET", "/api/v1/students/leaderboard/settings"): Row(TUTORS, "a tutor's own"),
    ("PUT", "/api/v1/students/leaderboard/settings"): Row(TUTORS, "a tutor's own", json=lambda c: {"anonymise": False}),
    ("PATCH", "/api/v1/students/me/profile"): Row(
        actors(STUDENT_A, STUDENT_B), "a student's own", json=lambda c: {"leaderboard_visible": True}
    ),
    ("GET", "/api/v1/students/{student_id}/profile"): Row(
        SEES_STUDENT_A, "the student, their tutor and parents, admins"
    ),
    ("GET", "/api/v1/students/{student_id}/achievements"): Row(SEES_STUDENT_A, "as the profile"),
    ("GET", "/api/v1/students/{student_id}/xp"): Row(SEES_STUDENT_A, "as the profile"),
    ("GET", "/api/v1/students/{student_id}/recommendations"): Row(SEES_STUDENT_A, "as the profile"),
    ("POST", "/api/v1/students/{student_id}/xp-adjustments"): Row(
        ONLY_TUTOR_A,
        "the student's own tutor (CONTRACTS)",
        json=lambda c: {"amount": 10, "reason": "matrix bonus"},
    ),
}
