"""A consistent world written straight into every service's database, not through the API.

    python -m shared.seeding --tutors 200 --students-per-tutor 25 [SERVICE ...]

For benchmarks and demonstrations: tutors, their students (and some students' parents),
weeks of weekly lessons held and still to come, top-ups and charges, homework in every
state, a few shared materials. :func:`build_world` draws the whole history once from a seed
(pure, no I/O); each service's ``services/<package>/seed.py`` writes its own tables from it
with its own rules (student-service its XP, payment-service its ledger), so the same person
has the same id in every database and every balance, XP total and schedule agrees across
services as if the history had happened through the API and the events.

A service's seed module has ``async def write(session, world) -> dict[str, int]`` (rows per
table, run in one transaction like a ``cli`` command) and, when the service publishes events
others log, ``def events(world) -> Iterator[Envelope]`` (what it would have published:
analytics-service keeps them in its event log and rebuilds its read models from them).
Event ids are derived from what they describe (:meth:`World.event_id`), so a consumer's
``source_event_id`` names the producer's event.

Rows go in with COPY. Seeding the same world twice fails on the first duplicate id: a
seeded database is seeded once (a different ``--seed`` or ``--tag`` makes another world).
Every seeded account's password is :data:`SEED_PASSWORD`: development data only.

The database URL of each service is ``<PACKAGE>_DATABASE_URL`` (e.g. ``USER_SERVICE_DATABASE_URL``),
else its local development URL, as for ``python -m shared.migrations``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import random
import re
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, Protocol

from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared import cli
from shared.events.catalogue import EventPayload
from shared.events.envelope import Envelope
from shared.fleet import FLEET, ServiceSpec, by_name, local_database_url

SEED_PASSWORD = "seeded-world-password"  # every seeded account's: development data only
CURRENCY = "RUB"
LESSON_MINUTES = 60
WEEKS_HELD = 8  # weekly lessons before the world's "now"...
WEEKS_AHEAD = 4  # ...and after it
PACKAGE_LESSONS = 10  # what most students pay for up front
SHORT_PACKAGE_LESSONS = 5  # every DEBTOR_EVERY-th student: in debt by now
DEBTOR_EVERY = 7
SECOND_TOP_UP_EVERY = 4  # every n-th student tops up again three weeks ago
SECOND_PACKAGE_LESSONS = 8
HOMEWORK_PER_STUDENT = 4  # after the latest held lessons: graded, graded, submitted, assigned
MATERIALS_PER_TUTOR = 3
MISSED_SHARE = 0.05  # of held lessons: no-shows
PRICES = (100_000, 150_000, 200_000)  # a tutor's default price, minor units
SUBJECTS = ("Mathematics", "Physics", "English", "Chemistry", "Informatics")
TIMEZONES = ("Europe/Moscow", "Europe/Moscow", "Europe/Moscow", "Europe/Samara", "Asia/Yekaterinburg")
TOP_UP_METHODS = ("cash", "transfer", "card")
_TAG = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")


# --- the world -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    role: str  # tutor, student, parent
    email: str
    full_name: str
    timezone: str
    created_at: datetime


@dataclass(frozen=True)
class Link:
    """Tutor → student or parent → student, made by ``tutor_id`` at ``created_at``."""

    principal_id: uuid.UUID
    student_id: uuid.UUID
    relation: str  # tutor, parent
    tutor_id: uuid.UUID
    created_at: datetime


@dataclass(frozen=True)
class Lesson:
    id: uuid.UUID
    tutor_id: uuid.UUID
    student_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    subject: str
    topic: str
    status: str  # scheduled, completed, missed
    attendance: str | None  # present, late (completed); absent (missed)
    grade: int | None
    mastery: str | None
    created_at: datetime  # when it was scheduled (the series, up front)

    @property
    def held(self) -> bool:
        return self.status in ("completed", "missed")

    @property
    def attended(self) -> bool:
        return self.status == "completed"


@dataclass(frozen=True)
class LedgerRow:
    """One change of a tutor–student balance, in the order they happened (``balance_after`` chains)."""

    id: uuid.UUID
    tutor_id: uuid.UUID
    student_id: uuid.UUID
    kind: str  # top_up, lesson_charge, no_show_charge
    amount: int  # signed minor units
    balance_after: int
    at: datetime
    lesson_id: uuid.UUID | None = None
    method: str | None = None  # a top-up's
    lessons: int | None = None  # a package top-up: how many lessons it bought
    lessons_covered: int = 0  # a top-up: how many more of the scheduled lessons after it are paid for


@dataclass(frozen=True)
class Homework:
    id: uuid.UUID
    tutor_id: uuid.UUID
    student_id: uuid.UUID
    lesson_id: uuid.UUID
    title: str
    assigned_at: datetime
    due_at: datetime
    status: str  # assigned, submitted, graded
    submission_id: uuid.UUID | None
    submitted_at: datetime | None
    answer: str | None
    grade: int | None
    graded_at: datetime | None


@dataclass(frozen=True)
class Material:
    """A tutor's link, shared with all their students."""

    id: uuid.UUID
    tutor_id: uuid.UUID
    title: str
    subject: str
    url: str
    created_at: datetime


@dataclass(frozen=True)
class World:
    seed: int
    tag: str
    as_of: datetime  # the world's "now": lessons before it were held, after it are scheduled
    currency: str
    tutors: tuple[Person, ...]
    students: tuple[Person, ...]
    parents: tuple[Person, ...]
    links: tuple[Link, ...]
    prices: Mapping[uuid.UUID, int]  # tutor → default price
    lessons: tuple[Lesson, ...]
    ledger: tuple[LedgerRow, ...]
    homework: tuple[Homework, ...]
    materials: tuple[Material, ...]

    @property
    def people(self) -> tuple[Person, ...]:
        return self.tutors + self.students + self.parents

    @cached_property
    def namespace(self) -> uuid.UUID:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"repitbot-seed:{self.tag}:{self.seed}")

    def event_id(self, event_type: str, key: object) -> uuid.UUID:
        """The id of the event of ``event_type`` about ``key``: the same for its producer and consumers."""
        return uuid.uuid5(self.namespace, f"{event_type}:{key}")

    def envelope(self, payload: EventPayload, key: object, *, producer: str, occurred_at: datetime) -> Envelope:
        event_id = self.event_id(payload.event_type, key)
        return Envelope.wrap(
            payload, producer=producer, correlation_id=f"seed-{event_id}", occurred_at=occurred_at, event_id=event_id
        )

    @cached_property
    def lesson_by_id(self) -> dict[uuid.UUID, Lesson]:
        return {lesson.id: lesson for lesson in self.lessons}

    @cached_property
    def tutor_of(self) -> dict[uuid.UUID, uuid.UUID]:
        return {link.student_id: link.tutor_id for link in self.links if link.relation == "tutor"}

    @cached_property
    def parents_of(self) -> dict[uuid.UUID, list[uuid.UUID]]:
        found: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
        for link in self.links:
            if link.relation == "parent":
                found[link.student_id].append(link.principal_id)
        return dict(found)

    @cached_property
    def students_of(self) -> dict[uuid.UUID, list[uuid.UUID]]:
        found: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
        for link in self.links:
            if link.relation == "tutor":
                found[link.tutor_id].append(link.student_id)
        return dict(found)

    def balance(self, tutor_id: uuid.UUID, student_id: uuid.UUID) -> int:
        return sum(row.amount for row in self.ledger if row.tutor_id == tutor_id and row.student_id == student_id)

    def counts(self) -> dict[str, int]:
        return {
            "tutors": len(self.tutors),
            "students": len(self.students),
            "parents": len(self.parents),
            "lessons": len(self.lessons),
            "ledger rows": len(self.ledger),
            "homework": len(self.homework),
            "materials": len(self.materials),
        }


def build_world(
    tutors: int,
    students_per_tutor: int,
    *,
    as_of: datetime,
    seed: int = 1,
    tag: str = "seed",
    parent_every: int = 5,
) -> World:
    """The whole history, drawn from ``seed``: the same arguments give the same world, ids included.

    Each tutor's students have weekly slots that never overlap (Monday–Saturday, from 08:00 UTC),
    ``WEEKS_HELD`` weeks held and ``WEEKS_AHEAD`` to come around the week of ``as_of``; every
    ``parent_every``-th student (0: none) has a parent.
    """
    if tutors < 1 or students_per_tutor < 1:
        raise ValueError("a world needs at least one tutor with one student")
    if students_per_tutor > 6 * 14:
        raise ValueError("at most 84 students per tutor: six days of 14 hourly slots")
    if not _TAG.match(tag):
        raise ValueError(f"tag must be lower-case letters, digits and '-', not {tag!r}")
    as_of = as_of.astimezone(UTC).replace(second=0, microsecond=0)
    rng = random.Random(f"{tag}:{seed}")

    def new_id() -> uuid.UUID:
        return uuid.UUID(int=rng.getrandbits(128), version=4)

    this_monday = (as_of - timedelta(days=as_of.weekday())).replace(hour=0, minute=0)
    first_week = this_monday - timedelta(weeks=WEEKS_HELD)
    joined = first_week - timedelta(days=7)  # everyone signed up the week before the first lesson

    people: dict[str, list[Person]] = {"tutor": [], "student": [], "parent": []}
    links: list[Link] = []
    prices: dict[uuid.UUID, int] = {}
    lessons: list[Lesson] = []
    ledger: list[LedgerRow] = []
    homework: list[Homework] = []
    materials: list[Material] = []

    def person(role: str, name: str, email_name: str, at: datetime) -> Person:
        made = Person(new_id(), role, f"{email_name}.{tag}@example.com", name, rng.choice(TIMEZONES), at)
        people[role].append(made)
        return made

    student_number = 0
    for t in range(tutors):
        tutor = person("tutor", f"Tutor {t + 1}", f"tutor{t + 1}", joined)
        prices[tutor.id] = rng.choice(PRICES)
        subject = SUBJECTS[t % len(SUBJECTS)]
        for m in range(MATERIALS_PER_TUTOR):
            materials.append(
                Material(
                    new_id(),
                    tutor.id,
                    f"{subject}: handout {m + 1}",
                    subject,
                    f"https://materials.example.com/{tutor.id}/{m + 1}",
                    joined + timedelta(hours=m + 1),
                )
            )
        for s in range(students_per_tutor):
            student_number += 1
            student_joined = joined + timedelta(days=1)
            student = person("student", f"Student {t + 1}.{s + 1}", f"student{t + 1}-{s + 1}", student_joined)
            links.append(Link(tutor.id, student.id, "tutor", tutor.id, student_joined))
            if parent_every and student_number % parent_every == 0:
                parent = person("parent", f"Parent of {student.full_name}", f"parent{t + 1}-{s + 1}", student_joined)
                links.append(Link(parent.id, student.id, "parent", tutor.id, student_joined + timedelta(hours=1)))
            slot = first_week + timedelta(days=s % 6, hours=8 + s // 6)
            scheduled_at = student_joined + timedelta(hours=2)
            student_lessons = [
                _lesson(rng, new_id(), tutor.id, student.id, subject, slot + timedelta(weeks=w), w, as_of, scheduled_at)
                for w in range(WEEKS_HELD + WEEKS_AHEAD + 1)
            ]
            lessons += student_lessons
            ledger += _account(rng, new_id, tutor.id, student.id, prices[tutor.id], student_lessons, student_number)
            homework += _homework(rng, new_id, student_lessons, as_of)

    return World(
        seed=seed,
        tag=tag,
        as_of=as_of,
        currency=CURRENCY,
        tutors=tuple(people["tutor"]),
        students=tuple(people["student"]),
        parents=tuple(people["parent"]),
        links=tuple(links),
        prices=prices,
        lessons=tuple(lessons),
        ledger=tuple(ledger),
        homework=tuple(homework),
        materials=tuple(materials),
    )


def _lesson(
    rng: random.Random,
    lesson_id: uuid.UUID,
    tutor_id: uuid.UUID,
    student_id: uuid.UUID,
    subject: str,
    starts_at: datetime,
    week: int,
    as_of: datetime,
    scheduled_at: datetime,
) -> Lesson:
    ends_at = starts_at + timedelta(minutes=LESSON_MINUTES)
    topic = f"{subject}, unit {week + 1}"
    if ends_at > as_of:
        return Lesson(lesson_id, tutor_id, student_id, starts_at, ends_at, subject, topic, "scheduled", None, None, None, scheduled_at)  # fmt: skip
    if rng.random() < MISSED_SHARE:
        return Lesson(lesson_id, tutor_id, student_id, starts_at, ends_at, subject, topic, "missed", "absent", None, None, scheduled_at)  # fmt: skip
    attendance = "late" if rng.random() < 0.1 else "present"
    grade = rng.choice((3, 4, 4, 5, 5))
    mastery = rng.choice(("learned", "learned", "mastered", "not_learned"))
    return Lesson(lesson_id, tutor_id, student_id, starts_at, ends_at, subject, topic, "completed", attendance, grade, mastery, scheduled_at)  # fmt: skip


def _account(
    rng: random.Random,
    new_id: Any,
    tutor_id: uuid.UUID,
    student_id: uuid.UUID,
    price: int,
    lessons: Sequence[Lesson],
    number: int,
) -> list[LedgerRow]:
    """The student's ledger with the tutor: a package before the first lesson (some pay for fewer lessons
    than they take), for some a second one three weeks before now, and a charge for every held lesson."""
    first = lessons[0].starts_at
    top_ups = [(first - timedelta(days=3), SHORT_PACKAGE_LESSONS if number % DEBTOR_EVERY == 0 else PACKAGE_LESSONS)]
    if number % SECOND_TOP_UP_EVERY == 0:
        top_ups.append((first + timedelta(weeks=WEEKS_HELD - 3, days=-1), SECOND_PACKAGE_LESSONS))
    changes: list[tuple[datetime, str, int, Any]] = [(at, "top_up", package, None) for at, package in top_ups]
    changes += [(x.ends_at, "lesson_charge" if x.attended else "no_show_charge", 0, x) for x in lessons if x.held]
    changes.sort(key=lambda change: change[0])

    rows: list[LedgerRow] = []
    balance = 0
    for at, kind, package, lesson in changes:
        if kind == "top_up":
            ahead = sum(1 for x in lessons if x.starts_at > at)
            before = min(ahead, max(balance, 0) // price)
            balance += package * price
            covered = min(ahead, max(balance, 0) // price) - before
            rows.append(
                LedgerRow(new_id(), tutor_id, student_id, kind, package * price, balance, at,
                          method=rng.choice(TOP_UP_METHODS), lessons=package, lessons_covered=covered)
            )  # fmt: skip
        else:
            balance -= price
            rows.append(LedgerRow(new_id(), tutor_id, student_id, kind, -price, balance, at, lesson_id=lesson.id))
    return rows


def _homework(rng: random.Random, new_id: Any, lessons: Sequence[Lesson], as_of: datetime) -> list[Homework]:
    """After each of the latest attended lessons: newest assigned, then submitted, the older ones graded."""
    attended = [x for x in lessons if x.attended][-HOMEWORK_PER_STUDENT:]
    made: list[Homework] = []
    for age, lesson in enumerate(reversed(attended)):
        assigned_at = lesson.ends_at
        due_at = assigned_at + timedelta(days=6)
        status = "assigned" if age == 0 else "submitted" if age == 1 else "graded"
        submitted_at = assigned_at + timedelta(days=3) if status != "assigned" else None
        if submitted_at is not None and submitted_at > as_of:
            status, submitted_at = "assigned", None
        graded_at = submitted_at + timedelta(days=1) if status == "graded" and submitted_at else None
        if graded_at is not None and graded_at > as_of:
            status, graded_at = "submitted", None
        made.append(
            Homework(
                id=new_id(),
                tutor_id=lesson.tutor_id,
                student_id=lesson.student_id,
                lesson_id=lesson.id,
                title=f"{lesson.topic}: exercises",
                assigned_at=assigned_at,
                due_at=due_at,
                status=status,
                submission_id=new_id() if submitted_at else None,
                submitted_at=submitted_at,
                answer="My answers are in the attached text." if submitted_at else None,
                grade=rng.choice((3, 4, 5, 5)) if graded_at else None,
                graded_at=graded_at,
            )
        )
    return made


# --- writing ---------------------------------------------------------------------------------------


class ServiceSeed(Protocol):
    async def write(self, session: AsyncSession, world: World) -> dict[str, int]: ...


async def copy_rows(session: AsyncSession, table: Table, rows: Iterable[Mapping[str, Any]]) -> int:
    """COPY ``rows`` (dicts with the same keys: the columns given; the others take their server defaults)
    into ``table`` inside the session's transaction; how many."""
    records: list[tuple[Any, ...]] = []
    columns: tuple[str, ...] | None = None
    for row in rows:
        if columns is None:
            columns = tuple(row)
            unknown = set(columns) - set(table.columns.keys())
            if unknown:
                raise ValueError(f"{table.name} has no column(s) {', '.join(sorted(unknown))}")
        records.append(tuple(row[name] for name in columns))
    if not records or columns is None:
        return 0
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
        table.name, records=records, columns=list(columns), schema_name=table.schema
    )
    return len(records)


def access_link_rows(world: World) -> Iterator[dict[str, Any]]:
    """Every service's ``access_links`` as the ``student.linked`` events would have left them."""
    for link in world.links:
        yield {
            "principal_id": link.principal_id,
            "student_id": link.student_id,
            "relation": link.relation,
            "active": 1,
            "updated_at": link.created_at,
        }


def seed_module(spec: ServiceSpec) -> ServiceSeed:
    return importlib.import_module(f"{spec.module}.seed")  # type: ignore[return-value]


def seeded_specs(services: Iterable[str] = ()) -> list[ServiceSpec]:
    """The named services (all with a database when none is named), in the fleet's order."""
    wanted = {by_name(name).name for name in services}
    return [spec for spec in FLEET if spec.has_database and (not wanted or spec.name in wanted)]


async def seed_fleet(world: World, database_urls: Mapping[str, str], *, say: Any = None) -> dict[str, dict[str, int]]:
    """Write ``world`` into each service named in ``database_urls`` (service → URL), one transaction each
    (its tables analysed at the end); the rows written per service and table."""
    written: dict[str, dict[str, int]] = {}
    for spec in seeded_specs(database_urls):
        started = time.monotonic()
        module = seed_module(spec)

        async def work(session: AsyncSession, module: ServiceSeed = module) -> dict[str, int]:
            written = await module.write(session, world)
            for table in written:  # fresh planner statistics, as a database in use has
                await session.execute(text(f'ANALYZE "{table}"'))
            return written

        written[spec.name] = await cli.in_one_transaction(database_urls[spec.name], f"{spec.name}-seed", work)
        if say is not None:
            rows = ", ".join(f"{count} {table}" for table, count in written[spec.name].items())
            say(f"seeded {spec.name} in {time.monotonic() - started:.1f}s: {rows}")
    return written


def _database_url(spec: ServiceSpec) -> str:
    return os.environ.get(f"{spec.env_prefix}DATABASE_URL") or local_database_url(spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.seeding", description=__doc__.splitlines()[0])
    parser.add_argument("services", nargs="*", help="the services to seed (default: every one with a database)")
    parser.add_argument("--tutors", type=int, default=200)
    parser.add_argument("--students-per-tutor", type=int, default=25)
    parser.add_argument("--parent-every", type=int, default=5, help="every n-th student has a parent (0: none)")
    parser.add_argument("--seed", type=int, default=1, help="the same seed and tag give the same world")
    parser.add_argument("--tag", default="seed", help="part of every email: worlds with different tags can coexist")
    parser.add_argument("--as-of", type=datetime.fromisoformat, help="the world's now (default: now)")
    args = parser.parse_args(argv)
    try:
        specs = seeded_specs(args.services)
        world = build_world(
            args.tutors,
            args.students_per_tutor,
            as_of=args.as_of or datetime.now(UTC),
            seed=args.seed,
            tag=args.tag,
            parent_every=args.parent_every,
        )
    except (KeyError, ValueError) as error:
        print(f"seeding: {error}", file=sys.stderr)
        return 2
    print("world: " + ", ".join(f"{count} {name}" for name, count in world.counts().items()), file=sys.stderr)
    urls = {spec.name: _database_url(spec) for spec in specs}
    asyncio.run(seed_fleet(world, urls, say=lambda line: print(line, file=sys.stderr)))
    print(f"every seeded account's password: {SEED_PASSWORD}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
