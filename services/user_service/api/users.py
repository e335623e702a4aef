"""/api/v1/users: the caller's profile, invites, a tutor's students, and users the caller may see."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from services.user_service.api.deps import AnyPerson, Settings, Tutor
from services.user_service.api.schemas import (
    ContactOut,
    ContactsOut,
    InviteOut,
    InviteRequest,
    ProfileUpdate,
    StudentOut,
    UserOut,
)
from services.user_service.domain import invites, links, users
from shared.auth.deps import CurrentUser, user_id_of
from shared.clock import Now
from shared.db import SessionDep
from shared.errors import NotFound
from shared.idempotency import IdempotentRoute
from shared.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor, encode_cursor

# POSTs here honour Idempotency-Key: a client retrying an invite gets the same code, not a second invite
router = APIRouter(prefix="/api/v1/users", tags=["users"], route_class=IdempotentRoute)


@router.get("/me")
async def read_me(me: AnyPerson, session: SessionDep) -> UserOut:
    return UserOut.of(await users.get_user(session, me.id))


@router.patch("/me")
async def update_me(body: ProfileUpdate, me: AnyPerson, session: SessionDep, now: Now) -> UserOut:
    user = await users.get_user(session, me.id)
    changes = body.model_dump(exclude_unset=True)
    return UserOut.of(await users.update_profile(session, user, changes, now=now))


@router.get("/me/contacts")
async def read_my_contacts(me: AnyPerson, session: SessionDep) -> ContactsOut:
    """The people linked to the caller (a person's own circle: one answer, not paged): a student's
    tutors and parents, a parent's children and their tutors, a tutor's students and their parents."""
    rows = await links.contacts(session, person_id=me.id, role=me.role)
    return ContactsOut(
        items=[
            ContactOut(
                id=user.id,
                full_name=user.full_name,
                role=user.role,
                language=user.language,
                timezone=user.timezone,
                relation=relation,
                student_id=student_id,
            )
            for user, relation, student_id in rows
        ]
    )


@router.post("/invites", status_code=status.HTTP_201_CREATED)
async def create_invite(
    body: InviteRequest, tutor: Tutor, session: SessionDep, settings: Settings, now: Now
) -> InviteOut:
    """A one-time invite for a new student, or for a parent of one of the tutor's students."""
    issued = await invites.create_invite(
        session,
        tutor_id=tutor.id,
        role=body.role,
        student_id=body.student_id,
        bot_username=settings.bot_username,
        ttl=settings.invite_ttl,
        now=now,
    )
    return InviteOut(code=issued.code, deep_link=issued.deep_link, expires_at=issued.expires_at)


@router.get("/students")
async def list_students(
    tutor: Tutor, session: SessionDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[StudentOut]:
    rows = await links.list_students(session, tutor_id=tutor.id, limit=limit + 1, after=decode_cursor(cursor))
    page, more = rows[:limit], len(rows) > limit
    return Page[StudentOut](
        items=[StudentOut(**UserOut.of(user).model_dump(), linked_at=link.created_at) for user, link in page],
        next_cursor=encode_cursor(page[-1][1].created_at, page[-1][1].id) if more else None,
    )


@router.delete("/students/{student_id}", status_code=status.HTTP_204_NO_CONTENT)
async def unlink_student(student_id: uuid.UUID, tutor: Tutor, session: SessionDep, now: Now) -> Response:
    await links.unlink_student(session, tutor_id=tutor.id, student_id=student_id, now=now)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{user_id}")
async def read_user(user_id: uuid.UUID, caller: CurrentUser, session: SessionDep) -> UserOut:
    """A user the caller may see (themselves, their students and those students' parents, their children)."""
    viewer_id = None if caller.is_service else user_id_of(caller)
    if not await links.can_see(session, viewer_id=viewer_id, viewer_role=caller.role, target_id=user_id):
        raise NotFound("No such user")
    return UserOut.of(await users.get_user(session, user_id))
