"""Tutors, their students and weekly series of past lessons, made through the services' own APIs.

Each tutor invites its students (user-service); each tutor–student pair gets daily
lessons in the past (lesson-service's weekly series, every weekday, ``series_limit``
lessons per series), at the pair's own hour of the day from 06:00 UTC so a tutor's
lessons never overlap. Every lesson has a price, so payment-service charges it when it
is completed. What this sends through the event path (``user.registered``,
``student.linked``, ``lesson.scheduled`` for every lesson) is consumed before anything
is measured: see :func:`benchmarks.common.quiet.wait_until_quiet`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import zip_longest
from time import time as time_now

import aiohttp
import httpx

from shared.testing.accounts import Account, invite, register

PRICE = 100_000  # kopecks per lesson
FIRST_HOUR_UTC = 6
CONCURRENT_PAIRS = 4  # series requests in flight at once while seeding


@dataclass
class Pair:
    tutor: Account
    student: Account
    lesson_ids: list[str] = field(default_factory=list)  # scheduled, oldest first


class SeedError(RuntimeError):
    pass


async def seed_pairs(
    user_service: str,
    lesson_service: str,
    *,
    tutors: int,
    students_per_tutor: int,
    lessons_per_pair: int,
    series_limit: int,
) -> list[Pair]:
    """Register the accounts and schedule ``lessons_per_pair`` past lessons for each pair."""
    async with httpx.AsyncClient(base_url=user_service, timeout=60) as users:
        pairs: list[Pair] = []
        for t in range(tutors):
            tutor = await register(users, f"bench tutor {t}")
            for s in range(students_per_tutor):
                student = await register(users, f"bench student {t}-{s}", await invite(users, tutor, "student"))
                pairs.append(Pair(tutor, student))
    hours = {id(pair): FIRST_HOUR_UTC + index % students_per_tutor for index, pair in enumerate(pairs)}
    gate = asyncio.Semaphore(CONCURRENT_PAIRS)
    async with httpx.AsyncClient(base_url=lesson_service, timeout=120) as lessons:

        async def schedule(pair: Pair) -> None:
            async with gate:
                for first_day, count in series_chunks(lessons_per_pair, series_limit, today=datetime.now(UTC)):
                    starts_at = datetime.combine(first_day, time(hours[id(pair)]), tzinfo=UTC)
                    pair.lesson_ids += await _schedule_series(lessons, pair, starts_at, count)

        await asyncio.gather(*(schedule(pair) for pair in pairs))
    return pairs


def series_chunks(lessons: int, limit: int, *, today: datetime) -> list[tuple[date, int]]:
    """(first day, count) of the daily series that hold ``lessons`` past lessons, at most ``limit`` each,
    back to back and ending the day before yesterday (so each day's lesson has ended, whatever the hour)."""
    chunks = []
    first = (today - timedelta(days=lessons + 1)).date()
    for start in range(0, lessons, limit):
        count = min(limit, lessons - start)
        chunks.append((first + timedelta(days=start), count))
    return chunks


async def _schedule_series(client: httpx.AsyncClient, pair: Pair, starts_at: datetime, count: int) -> list[str]:
    body = {
        "student_id": pair.student.id,
        "starts_at": starts_at.isoformat(),
        "duration_minutes": 60,
        "subject": "Mathematics",
        "price": PRICE,
        "currency": "RUB",
        "weekdays": ["MO", "TU", "WE", "TH", "FR", "SA", "SU"],
        "count": count,
        "timezone": "UTC",
    }
    response = await client.post("/api/v1/lessons/series", json=body, headers=pair.tutor.headers)
    if response.status_code != 201:
        raise SeedError(f"scheduling a series failed: {response.status_code} {response.text[:300]}")
    return [lesson["id"] for lesson in response.json()["lessons"]]


def interleaved(pairs: list[Pair]) -> Iterator[tuple[Pair, str]]:
    """Every (pair, lesson id), one pair after another (pair 1's first, pair 2's first, ..., pair 1's
    second, ...), so consecutive completions come from different tutors and students, as real traffic does."""
    for lessons in zip_longest(*(pair.lesson_ids for pair in pairs)):
        for pair, lesson_id in zip(pairs, lessons, strict=True):
            if lesson_id is not None:
                yield pair, lesson_id


GRADE = 5  # a regular lesson graded 5: 200 XP (DESIGN.md §6)


@dataclass(frozen=True)
class Completion:
    lesson_id: str
    student_id: str
    sent_at: float  # wall clock
    returned_at: float
    status: int


async def complete_lesson(client: aiohttp.ClientSession, pair: Pair, lesson_id: str) -> Completion:
    """``POST /api/v1/lessons/{id}/complete`` as the pair's tutor (present, graded 5).

    aiohttp rather than httpx: at 100 requests/s httpx alone took a third of a core of the
    two that the services under test share with the harness."""
    sent = time_now()
    try:
        async with client.post(
            f"/api/v1/lessons/{lesson_id}/complete", json={"grade": GRADE}, headers=pair.tutor.headers
        ) as response:
            await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError):
        status = 0
    return Completion(lesson_id, pair.student.id, sent, time_now(), status)


def completion_session(base_url: str, *, connections: int = 64, timeout: float = 60) -> aiohttp.ClientSession:
    """A client for :func:`complete_lesson` (create it inside the running event loop)."""
    return aiohttp.ClientSession(
        base_url=base_url,
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=timeout),
    )
