"""iCalendar feeds: each user's lessons at a secret, revocable URL that phone calendars subscribe to.

``POST /api/v1/lessons/calendar-feed`` makes (or replaces: the old URL stops working) the caller's
feed URL; ``DELETE`` revokes it. ``GET /api/v1/lessons/calendar.ics?token=...`` is public (the
gateway lets it through without a JWT, services/api_gateway/routing.py PUBLIC_PATHS): calendar apps
cannot send a bearer token. The token rides in the query, which the access logs never record; only
its SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import icalendar
from fastapi import APIRouter, Query, Response, status
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert

from services.lesson_service.api.deps import Settings
from services.lesson_service.api.schemas import FeedOut
from services.lesson_service.models import CalendarFeed, Lesson
from shared.auth.deps import Person, user_id_of
from shared.clock import Now
from shared.db import SessionDep
from shared.errors import NotFound
from shared.tables import access_links

router = APIRouter(prefix="/api/v1/lessons", tags=["calendar"])
FEED_PATH = "/api/v1/lessons/calendar.ics"
FEED_PAST = timedelta(days=90)  # how far back a feed reaches


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@router.post("/calendar-feed", status_code=status.HTTP_201_CREATED)
async def create_feed(caller: Person, session: SessionDep, settings: Settings) -> FeedOut:
    """A new secret feed URL for the caller; any earlier one stops working."""
    token = secrets.token_urlsafe(32)
    statement = insert(CalendarFeed).values(user_id=user_id_of(caller), role=caller.role, token_hash=_hash(token))
    statement = statement.on_conflict_do_update(
        index_elements=[CalendarFeed.user_id],
        set_={"token_hash": statement.excluded.token_hash, "role": statement.excluded.role},
    )
    await session.execute(statement)
    return FeedOut(url=f"{settings.public_base_url.rstrip('/')}{FEED_PATH}?token={token}", token=token)


@router.delete("/calendar-feed", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_feed(caller: Person, session: SessionDep) -> Response:
    await session.execute(delete(CalendarFeed).where(CalendarFeed.user_id == user_id_of(caller)))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/calendar.ics", response_class=Response)
async def feed(session: SessionDep, now: Now, token: str = Query(min_length=20, max_length=100)) -> Response:
    owner = await session.scalar(select(CalendarFeed).where(CalendarFeed.token_hash == _hash(token)))
    if owner is None:
        raise NotFound("No such calendar feed")
    statement = select(Lesson).where(Lesson.ends_at > now - FEED_PAST)
    if owner.role == "tutor":
        statement = statement.where(Lesson.tutor_id == owner.user_id)
    elif owner.role == "student":
        statement = statement.where(Lesson.student_id == owner.user_id)
    elif owner.role == "parent":
        statement = statement.where(
            Lesson.student_id.in_(
                select(access_links.c.student_id).where(
                    access_links.c.principal_id == owner.user_id,
                    access_links.c.relation == "parent",
                    access_links.c.active == 1,
                )
            )
        )
    rows = await session.scalars(statement.order_by(Lesson.starts_at).limit(2000))
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//RepitBot//lessons//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", "RepitBot lessons")
    for lesson in rows:
        event = icalendar.Event()
        event.add("uid", f"{lesson.id}@repitbot")
        event.add("dtstamp", lesson.updated_at)
        event.add("dtstart", lesson.starts_at)
        event.add("dtend", lesson.ends_at)
        event.add("summary", f"{lesson.subject}: {lesson.topic}" if lesson.topic else lesson.subject)
        event.add("status", "CANCELLED" if lesson.status == "cancelled" else "CONFIRMED")
        if lesson.place or lesson.online_url:
            event.add("location", lesson.place or lesson.online_url)
        if lesson.online_url:
            event.add("url", lesson.online_url)
        calendar.add_component(event)
    return Response(
        content=calendar.to_ical(),
        media_type="text/calendar; charset=utf-8",
        headers={"Cache-Control": "private, max-age=300"},
    )
