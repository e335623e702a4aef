"""The authorisation matrix (issue 9, "Proof under fire"): every operation of the gateway's combined
``/openapi.json`` × tutor A, tutor B, a student of A, a student of B, a parent of A's student, an
admin, the bot (its client-credentials token) and anonymous, through the test fleet's gateway.

The operations come from the OpenAPI document, so a new endpoint cannot escape: without a row in
tests/authorisation_matrix.py it fails here. The world is built through the gateway as a client would
(tutor A with a student and that student's parent, tutor B with a student, an admin made by the
operator's CLI), with a lesson, a homework handed in, a material, a top-up, prices and a plan of A's.

The run has two phases. First every denied cell, each aimed at A's shared resources, while A's world is
read before and after: a refused request must change nothing. Then every allowed cell, a row that
changes or ends what it acts on (``fresh``) giving each allowed actor a new resource of its own.
Allowed: a 2xx answer. Denied: 401 for anonymous, 403 or 404 for anyone signed in (404 hides that
the thing exists: DESIGN.md §4). Every mismatching cell is reported at once, as a table.

The gateway limits each caller to 100 requests a minute, and this module sends more than that as
tutor A: once a caller has fewer than ``LIMIT_MARGIN`` left, its entry in the limiter's Redis log
(the fleet's own Redis database) is removed, so the matrix measures authorisation, not the limit.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from shared.runner.layout import REPO_ROOT
from shared.testing.accounts import PASSWORD, Account, invite, register
from shared.testing.events import eventually
from shared.testing.fleet import TestFleet
from tests.authorisation_matrix import (
    ACTORS,
    ADMIN,
    ANONYMOUS,
    BOT,
    EXPECTED,
    OTHER_TENANT,
    PARENT_A,
    STUDENT_A,
    STUDENT_B,
    TUTOR_A,
    TUTOR_B,
    Ctx,
    Row,
    World,
    a_ids,
    path_defaults,
)

HTTP_METHODS = ("get", "put", "post", "patch", "delete", "head", "options", "trace")
LIMIT_MARGIN = 15
BOUND_SECONDS = 20  # a bound on every wait, never an assertion on time
BOT_CLIENT_ID = "telegram-bot"
SPARE_TELEGRAM_ID = 6_000_000_000 + uuid.uuid4().int % 10**9  # the bot's sign-ins that mint refresh tokens
TEXT_FILE = ("notes.txt", b"matrix notes\n", "text/plain")

Operation = tuple[str, str]  # ("GET", "/api/v1/lessons/{lesson_id}")


@dataclass(frozen=True)
class Cell:
    operation: Operation
    actor: str
    allowed: bool
    status: int
    detail: str  # the error code and message, or what went wrong building the request
    leaked: tuple[str, ...] = ()  # names of A's ids in an answer to the other tenant

    @property
    def mismatch(self) -> str | None:
        """What is wrong with this cell; None when it answered as the table says."""
        if self.allowed:
            return None if 200 <= self.status < 300 else "should be allowed (2xx)"
        wanted = (401,) if self.actor == ANONYMOUS else (403, 404)
        return None if self.status in wanted else f"should be denied ({' or '.join(map(str, wanted))})"


@dataclass
class MatrixRun:
    operations: list[Operation]
    services: dict[str, str]  # x-services of the combined document
    world: World | None = None
    cells: list[Cell] = field(default_factory=list)
    before: dict[str, Any] = field(default_factory=dict)  # A's world before the denied phase
    after: dict[str, Any] = field(default_factory=dict)  # and after it


class Fleetside:
    """The actors' clients on the fleet's gateway, tutor A's world, and fresh resources of it."""

    def __init__(self, fleet: TestFleet, gateway: httpx.AsyncClient, redis: Redis, client_address: str) -> None:
        self.fleet = fleet
        self.gateway = gateway
        self.redis = redis
        self.client_address = client_address
        self.accounts: dict[str, Account] = {}
        self.world: World
        self.shared: dict[str, str] = {}
        self._soon = itertools.count()
        self._soon_base = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=2)

    # --- requests ------------------------------------------------------------------------------

    def _limit_identity(self, actor: str) -> str:
        if actor == ANONYMOUS:
            return f"ip:{self.client_address}"
        if actor == BOT:
            return f"service:{BOT_CLIENT_ID}"
        return f"user:{self.accounts[actor].id}"

    async def _forget_rate_limit(self, actor: str) -> None:
        async for key in self.redis.scan_iter(match=f"*:{self._limit_identity(actor)}", count=1000):
            await self.redis.delete(key)

    async def send(self, actor: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        account = self.accounts.get(actor)
        headers = account.headers if account else {}
        response = await self.gateway.request(method, path, headers=headers, **kwargs)
        remaining = response.headers.get("x-ratelimit-remaining")
        if remaining is not None and int(remaining) < LIMIT_MARGIN:
            await self._forget_rate_limit(actor)
        return response

    async def ok(self, actor: str, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.send(actor, method, path, **kwargs)
        assert 200 <= response.status_code < 300, f"{method} {path} as {actor}: {response.status_code} {response.text}"
        return response.json() if response.content and "json" in response.headers.get("content-type", "") else None

    # --- the cast --------------------------------------------------------------------------------

    async def make_cast(self) -> None:
        email_a = f"spare-{uuid.uuid4().hex[:10]}@example.test"
        tutor_a, tutor_b = await register(self.gateway, "tutor a"), await register(self.gateway, "tutor b")
        student_a = await register(self.gateway, "student a", await invite(self.gateway, tutor_a, "student"))
        parent_a = await register(self.gateway, "parent a", await invite(self.gateway, tutor_a, "parent", student_a.id))
        student_b = await register(self.gateway, "student b", await invite(self.gateway, tutor_b, "student"))
        spare = await register(
            self.gateway, "spare student", await invite(self.gateway, tutor_a, "student"), email=email_a
        )
        self.accounts = {
            TUTOR_A: tutor_a,
            TUTOR_B: tutor_b,
            STUDENT_A: student_a,
            STUDENT_B: student_b,
            PARENT_A: parent_a,
            ADMIN: await self._admin(),
            BOT: await self._bot(),
            "spare": spare,
        }
        self.spare_email = email_a

    async def _admin(self) -> Account:
        """An admin the operator's way (``make create-admin``: services/user_service/cli.py), signed in."""
        email = f"admin-{uuid.uuid4().hex[:10]}@example.test"
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.user_service.cli",
            "create-admin",
            "--email",
            email,
            "--full-name",
            "Matrix Operator",
            "--password",
            PASSWORD,
            env={**os.environ, **self.fleet.env["user-service"]},
            cwd=REPO_ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), BOUND_SECONDS)
        assert process.returncode == 0 and b"created admin" in output, output.decode()
        login = await self.gateway.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        me = await self.gateway.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["role"] == "admin", me.text
        return Account(me.json()["id"], "admin", token)

    async def _bot(self) -> Account:
        body = {
            "grant_type": "client_credentials",
            "client_id": BOT_CLIENT_ID,
            "client_secret": self.fleet.client_secret(BOT_CLIENT_ID),
        }
        response = await self.gateway.post("/api/v1/auth/token", json=body)
        assert response.status_code == 200, response.text
        return Account(BOT_CLIENT_ID, "service", response.json()["access_token"])

    # --- tutor A's world -----------------------------------------------------------------------

    async def make_world(self) -> None:
        ids = {name: account.id for name, account in self.accounts.items()}
        student_a, tutor_a = ids[STUDENT_A], ids[TUTOR_A]
        for tutor in (TUTOR_A, TUTOR_B):
            await self.ok(tutor, "PUT", "/api/v1/payments/prices/default", json={"amount": 150_000, "currency": "RUB"})
        await self.ok(
            TUTOR_A, "PUT", f"/api/v1/payments/prices/students/{student_a}", json={"amount": 120_000, "currency": "RUB"}
        )
        await self.ok(TUTOR_A, "PUT", f"/api/v1/lessons/plans/{student_a}", json={"topics": ["Fractions", "Decimals"]})
        base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        lesson = await self.ok(
            TUTOR_A,
            "POST",
            "/api/v1/lessons",
            json={"student_id": student_a, "starts_at": (base + timedelta(days=3)).isoformat(), "subject": "Maths"},
        )
        payment = await self.ok(
            TUTOR_A,
            "POST",
            "/api/v1/payments/top-ups",
            json={"student_id": student_a, "amount": 300_000, "currency": "RUB", "method": "cash"},
        )
        homework = await self._homework(submitted=True)
        material = await self._material()
        await self.ok(TUTOR_A, "POST", f"/api/v1/materials/{material}/share", json={"student_ids": [student_a]})
        feed = await self.ok("spare", "POST", "/api/v1/lessons/calendar-feed")
        self.world = World(
            tutor_a=tutor_a,
            tutor_b=ids[TUTOR_B],
            student_a=student_a,
            student_b=ids[STUDENT_B],
            parent_a=ids[PARENT_A],
            lesson=lesson["id"],
            homework=homework,
            material=material,
            payment=payment["id"],
            feed_token=feed["token"],
            login_email=self.spare_email,
            login_password=PASSWORD,
            bot_client_id=BOT_CLIENT_ID,
            bot_client_secret=self.fleet.client_secret(BOT_CLIENT_ID),
        )
        self.shared = {
            "lesson": lesson["id"],
            "chargeable_cancellation": await self._chargeable_cancellation(),
            "homework": homework,
            "submitted_homework": homework,
            "material": material,
            "student": student_a,
            "student_price": student_a,
            "refresh_token": await self._refresh_token(),
            "invite": await invite(self.gateway, self.accounts[TUTOR_A], "student"),
        }
        await self._settled()

    async def _settled(self) -> None:
        """Wait for what other services learn from events, so that an allowed read finds it and a
        denied one is refused for who asks, not because the thing is not known there yet."""
        w = self.world

        async def answers(actor: str, path: str, **params: str) -> bool:
            response = await self.send(actor, "GET", path, params=params)
            return response.status_code == 200

        async def reminded() -> bool:
            response = await self.send(
                TUTOR_A, "GET", "/api/v1/notifications/reminders", params={"lesson_id": w.lesson}
            )
            return response.status_code == 200 and response.json()["items"] != []

        async def charged() -> bool:
            statement = await self.ok(ADMIN, "GET", f"/api/v1/payments/statements/{w.student_a}")
            return any(entry["kind"] == "late_cancel_charge" for entry in statement["items"])

        checks = {
            "the lesson's reminders": reminded,
            "student A's game profile": lambda: answers(ADMIN, f"/api/v1/students/{w.student_a}/profile"),
            "student B's game profile": lambda: answers(STUDENT_B, f"/api/v1/students/{w.student_b}/profile"),
            "tutor A's leaderboard for student A": lambda: answers(STUDENT_A, "/api/v1/students/leaderboard"),
            "student A as a recipient": lambda: answers(
                ADMIN, "/api/v1/notifications/preferences", user_id=w.student_a
            ),
            "the late cancellation's charge": charged,
        }
        for what, check in checks.items():
            await eventually(check, timeout=BOUND_SECONDS, what=what)

    # --- fresh resources of A's world, one per allowed actor of a destructive row ---------------

    async def fresh(self, kind: str) -> str:
        w = self.world
        if kind == "lesson":
            body = {"student_id": w.student_a, "starts_at": w.slot(), "subject": "Maths"}
            return str((await self.ok(TUTOR_A, "POST", "/api/v1/lessons", json=body))["id"])
        if kind == "chargeable_cancellation":
            return await self._chargeable_cancellation()
        if kind in ("homework", "submitted_homework"):
            return await self._homework(submitted=kind == "submitted_homework")
        if kind == "material":
            return await self._material()
        if kind == "student":
            code = await invite(self.gateway, self.accounts[TUTOR_A], "student")
            return (await register(self.gateway, "student to let go", code)).id
        if kind == "student_price":
            body = {"amount": 120_000, "currency": "RUB"}
            await self.ok(TUTOR_A, "PUT", f"/api/v1/payments/prices/students/{w.student_a}", json=body)
            return w.student_a
        if kind == "refresh_token":
            return await self._refresh_token()
        if kind == "invite":
            return await invite(self.gateway, self.accounts[TUTOR_A], "student")
        raise AssertionError(f"no fresh {kind!r}: add it to Fleetside.fresh")

    async def _homework(self, *, submitted: bool) -> str:
        student_a = self.accounts[STUDENT_A].id
        due = (datetime.now(UTC) + timedelta(days=14)).isoformat()
        body = {"student_id": student_a, "title": "Exercises", "due_at": due}
        homework = str((await self.ok(TUTOR_A, "POST", "/api/v1/homework", json=body))["id"])
        if submitted:
            await self.ok(STUDENT_A, "POST", f"/api/v1/homework/{homework}/submissions", json={"text": "answers"})
        return homework

    async def _material(self) -> str:
        answer = await self.ok(TUTOR_A, "POST", "/api/v1/materials", files={"file": TEXT_FILE}, data={"title": "Notes"})
        return str(answer["id"])

    async def _chargeable_cancellation(self) -> str:
        """A lesson within the late-cancellation window, cancelled by its student: chargeable."""
        starts = self._soon_base + timedelta(minutes=65 * next(self._soon))
        body = {"student_id": self.accounts[STUDENT_A].id, "starts_at": starts.isoformat(), "subject": "Maths"}
        lesson = str((await self.ok(TUTOR_A, "POST", "/api/v1/lessons", json=body))["id"])
        cancelled = await self.ok(STUDENT_A, "POST", f"/api/v1/lessons/{lesson}/cancel", json={"reason": "ill"})
        assert cancelled["status"] == "cancelled" and cancelled["chargeable"] is True, cancelled
        return lesson

    async def _refresh_token(self) -> str:
        body = {"telegram_id": SPARE_TELEGRAM_ID, "full_name": "Matrix Telegram Spare"}
        return str((await self.ok(BOT, "POST", "/api/v1/auth/telegram", json=body))["refresh_token"])

    # --- A's world as its owners see it: a refused request must leave it as it was ---------------

    async def snapshot(self) -> dict[str, Any]:
        w = self.world
        reads = {
            "student A's lessons": (ADMIN, "/api/v1/lessons", {"student_id": w.student_a, "limit": "200"}),
            "student A's homework": (ADMIN, "/api/v1/homework", {"student_id": w.student_a, "limit": "200"}),
            "the homework's submissions": (ADMIN, f"/api/v1/homework/{w.homework}/submissions", {}),
            "the material": (TUTOR_A, f"/api/v1/materials/{w.material}", {}),
            "student A's statement": (ADMIN, f"/api/v1/payments/statements/{w.student_a}", {"limit": "200"}),
            "student A's price": (ADMIN, f"/api/v1/payments/prices/students/{w.student_a}", {}),
            "tutor A's default price": (TUTOR_A, "/api/v1/payments/prices/default", {}),
            "tutor A's students": (TUTOR_A, "/api/v1/users/students", {"limit": "200"}),
            "student A's account": (ADMIN, f"/api/v1/users/{w.student_a}", {}),
            "the study plan": (ADMIN, f"/api/v1/lessons/plans/{w.student_a}", {"tutor_id": w.tutor_a}),
            "tutor A's leaderboard settings": (TUTOR_A, "/api/v1/students/leaderboard/settings", {}),
            "student A's XP": (ADMIN, f"/api/v1/students/{w.student_a}/xp", {"limit": "200"}),
        }
        seen: dict[str, Any] = {}
        for name, (actor, path, params) in reads.items():
            seen[name] = await self.ok(actor, "GET", path, params=params)
        # XP from events keeps arriving; only a tutor's adjustment is made by a request
        seen["student A's XP"] = [e for e in seen["student A's XP"]["items"] if e["source"] in ("bonus", "correction")]
        return seen

    # --- the cells -------------------------------------------------------------------------------

    async def attempt(self, operation: Operation, row: Row, actor: str, allowed: bool) -> Cell:
        method, template = operation
        try:
            if allowed and row.fresh:
                resource = await self.fresh(row.fresh)
            else:
                resource = self.shared.get(row.fresh or "", "")
            ctx = Ctx(self.world, actor, resource)
            params = {**path_defaults(self.world), **(row.path(ctx) if row.path else {})}
            path = template.format_map(params)
            kwargs: dict[str, Any] = {}
            if row.query:
                kwargs["params"] = row.query(ctx)
            if row.json:
                kwargs["json"] = row.json(ctx)
            if row.upload:
                kwargs.update(files={"file": TEXT_FILE}, data={"title": f"Upload by {actor}"})
        except (AssertionError, KeyError) as exc:  # the world could not be made for this cell
            return Cell(operation, actor, allowed, 0, f"request not built: {exc!r}"[:200])
        try:
            response = await self.send(actor, method, path, **kwargs)
        except httpx.HTTPError as exc:
            return Cell(operation, actor, allowed, 0, f"no answer: {exc!r}"[:200])
        leaked: tuple[str, ...] = ()
        if allowed and actor in OTHER_TENANT and not row.public:
            leaked = tuple(name for name, value in a_ids(self.world).items() if value in response.text)
        return Cell(operation, actor, allowed, response.status_code, _detail(response), leaked)


def _detail(response: httpx.Response) -> str:
    try:
        error = response.json().get("error") if response.content else None
    except ValueError:
        error = None
    if isinstance(error, dict):
        return f"{error.get('code')}: {error.get('message')}"[:120]
    return ""


def operations_of(document: dict[str, Any]) -> list[Operation]:
    return [
        (method.upper(), path) for path, item in document["paths"].items() for method in HTTP_METHODS if method in item
    ]


@pytest.fixture(scope="module")
async def matrix(fleet: TestFleet) -> AsyncIterator[MatrixRun]:
    client_address = f"198.19.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    redis = Redis.from_url(fleet.redis_url)
    async with (
        fleet.client("api-gateway", headers={"X-Forwarded-For": client_address}, timeout=BOUND_SECONDS) as gateway,
        redis,
    ):
        side = Fleetside(fleet, gateway, redis, client_address)
        document = await side.ok(ANONYMOUS, "GET", "/openapi.json")
        run = MatrixRun(operations_of(document), dict(document.get("x-services", {})))
        await side.make_cast()
        await side.make_world()
        run.world = side.world
        known = [operation for operation in run.operations if operation in EXPECTED]

        run.before = await side.snapshot()
        for operation in known:  # every refusal first, at A's shared resources
            row = EXPECTED[operation]
            denied = [actor for actor in ACTORS if actor not in row.allowed]
            run.cells += await asyncio.gather(*(side.attempt(operation, row, actor, False) for actor in denied))
        run.after = await side.snapshot()
        for operation in known:
            row = EXPECTED[operation]
            allowed = [actor for actor in ACTORS if actor in row.allowed]
            run.cells += await asyncio.gather(*(side.attempt(operation, row, actor, True) for actor in allowed))
        yield run


def _table(cells: list[Cell], problem: Any) -> str:
    lines = [f"{'operation':<62} {'actor':<10} {'got':>4}  problem / answer"]
    for cell in sorted(cells, key=lambda c: (c.operation[1], c.operation[0], ACTORS.index(c.actor))):
        operation = f"{cell.operation[0]} {cell.operation[1]}"
        lines.append(f"{operation:<62} {cell.actor:<10} {cell.status:>4}  {problem(cell)} — {cell.detail}")
    return "\n".join(lines)


def test_every_operation_of_the_combined_openapi_has_a_row_and_every_row_an_operation(matrix: MatrixRun) -> None:
    assert matrix.services and set(matrix.services.values()) == {"current"}, matrix.services
    missing = [operation for operation in matrix.operations if operation not in EXPECTED]
    stale = [operation for operation in EXPECTED if operation not in matrix.operations]
    problems = []
    if missing:
        problems.append(
            "operations in the gateway's /openapi.json without a row in tests/authorisation_matrix.py EXPECTED "
            "(add one saying who may call it and why):\n" + "\n".join(f"  {m} {p}" for m, p in missing)
        )
    if stale:
        problems.append(
            "rows in tests/authorisation_matrix.py EXPECTED for operations that no longer exist (remove them):\n"
            + "\n".join(f"  {m} {p}" for m, p in stale)
        )
    assert not problems, "\n".join(problems)


def test_only_the_allowed_cells_of_the_matrix_succeed(matrix: MatrixRun) -> None:
    cells = {(cell.operation, cell.actor) for cell in matrix.cells}
    covered = [operation for operation in matrix.operations if operation in EXPECTED]
    assert cells == {(operation, actor) for operation in covered for actor in ACTORS}  # every cell was tried
    wrong = [cell for cell in matrix.cells if cell.mismatch]
    assert not wrong, f"{len(wrong)} of {len(matrix.cells)} cells answered against the table:\n" + _table(
        wrong, lambda cell: cell.mismatch
    )


def test_nothing_the_other_tenant_may_call_shows_them_tutor_as_world(matrix: MatrixRun) -> None:
    leaks = [cell for cell in matrix.cells if cell.leaked]
    assert not leaks, _table(leaks, lambda cell: f"shows {', '.join(cell.leaked)}")
    # the check did look: tutor B and student B made allowed calls that answered
    assert sum(1 for cell in matrix.cells if cell.actor in OTHER_TENANT and cell.allowed and cell.status < 300) > 10


def differences(before: Any, after: Any, where: str) -> list[str]:
    """Where two JSON values differ, as ``where.key[index]: before → after`` lines."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            line
            for key in dict.fromkeys([*before, *after])
            for line in differences(before.get(key, "<absent>"), after.get(key, "<absent>"), f"{where}.{key}")
        ]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [
            line
            for i, (b, a) in enumerate(zip(before, after, strict=True))
            for line in differences(b, a, f"{where}[{i}]")
        ]
    return (
        []
        if before == after
        else [f"{where}: {json.dumps(before, default=str)[:200]} → {json.dumps(after, default=str)[:200]}"]
    )


def test_refused_requests_leave_tutor_as_world_unchanged(matrix: MatrixRun) -> None:
    assert set(matrix.before) == set(matrix.after) and len(matrix.before) >= 12
    changed = [line for name in matrix.before for line in differences(matrix.before[name], matrix.after[name], name)]
    assert not changed, "A's world changed while only refused requests were made:\n" + "\n".join(changed)


def test_a_refused_cancel_leaves_the_lesson_scheduled_and_a_refused_grade_the_homework_ungraded(
    matrix: MatrixRun,
) -> None:
    """Spot checks of what the snapshot comparison covers, in the words of the design."""
    refusals = {(cell.operation[1].rsplit("/", 1)[-1], cell.actor) for cell in matrix.cells if not cell.allowed}
    for actor in (TUTOR_B, STUDENT_B, ADMIN, BOT, ANONYMOUS):
        assert ("cancel", actor) in refusals and ("grade", actor) in refusals
    lessons = {lesson["id"]: lesson for lesson in matrix.after["student A's lessons"]["items"]}
    homework = {item["id"]: item for item in matrix.after["student A's homework"]["items"]}
    assert matrix.world is not None
    assert lessons[matrix.world.lesson]["status"] == "scheduled"
    excusable = [lesson for lesson in lessons.values() if lesson["status"] == "cancelled"]
    assert excusable and all(lesson["chargeable"] for lesson in excusable)  # nobody but its tutor excused it
    assert homework[matrix.world.homework]["status"] == "submitted" and homework[matrix.world.homework]["grade"] is None
    assert matrix.after["the material"]["shared_with"]  # not deleted, still shared
    assert [entry for entry in matrix.after["student A's XP"]] == []  # no bonus granted by anyone refused
