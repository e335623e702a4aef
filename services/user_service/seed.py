"""user-service's part of a seeded world (``shared/seeding.py``): the accounts, every one with the password
:data:`~shared.seeding.SEED_PASSWORD` (hashed once), and the tutor and parent links."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy.ext.asyncio import AsyncSession

from services.user_service.domain.passwords import hash_password
from services.user_service.events import student_linked, user_registered
from services.user_service.models import DEFAULT_LANGUAGE, StudentLink, User
from shared.events.envelope import Envelope
from shared.seeding import SEED_PASSWORD, World, access_link_rows, copy_rows
from shared.tables import access_links

PRODUCER = "user-service"


async def write(session: AsyncSession, world: World) -> dict[str, int]:
    password_hash = await hash_password(SEED_PASSWORD)
    users = [
        {
            "id": person.id,
            "email": person.email,
            "password_hash": password_hash,
            "full_name": person.full_name,
            "role": person.role,
            "timezone": person.timezone,
            "language": DEFAULT_LANGUAGE,
            "created_at": person.created_at,
            "updated_at": person.created_at,
        }
        for person in world.people
    ]
    links = [
        {
            "id": world.event_id("link", f"{link.principal_id}:{link.student_id}"),
            "principal_id": link.principal_id,
            "student_id": link.student_id,
            "relation": link.relation,
            "tutor_id": link.tutor_id,
            "created_at": link.created_at,
        }
        for link in world.links
    ]
    return {
        "users": await copy_rows(session, User.__table__, users),
        "student_links": await copy_rows(session, StudentLink.__table__, links),
        "access_links": await copy_rows(session, access_links, access_link_rows(world)),
    }


def events(world: World) -> Iterator[Envelope]:
    """``user.registered`` for everyone, ``student.linked`` for every link."""
    invited_by = {
        link.principal_id if link.relation == "parent" else link.student_id: link.tutor_id for link in world.links
    }
    for person in world.people:
        user = User(
            id=person.id,
            role=person.role,
            full_name=person.full_name,
            email=person.email,
            timezone=person.timezone,
            language=DEFAULT_LANGUAGE,
            telegram_id=None,
        )
        payload = user_registered(user, tutor_id=invited_by.get(person.id))
        yield world.envelope(payload, person.id, producer=PRODUCER, occurred_at=person.created_at)
    for link in world.links:
        row = StudentLink(
            principal_id=link.principal_id, student_id=link.student_id, relation=link.relation, tutor_id=link.tutor_id
        )
        key = f"{link.principal_id}:{link.student_id}"
        yield world.envelope(student_linked(row), key, producer=PRODUCER, occurred_at=link.created_at)
