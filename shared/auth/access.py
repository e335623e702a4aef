"""Who may see which student (DESIGN.md §4), answered the same way in every service.

- admin and service accounts: everyone; a student: only themself; a tutor or a
  parent: a student they are linked to; anyone else: 404 (never 403, which would
  confirm that the student exists).
- Links live in each service's ``access_links`` table, kept by
  :data:`ACCESS_LINK_HANDLERS` from ``student.linked`` / ``student.unlinked``
  (registered by ``create_app``). Each row remembers when its state was
  observed (``updated_at``) and only a newer observation changes it, so a late,
  older event never re-activates a link that was ended after it.
- On a local miss, :class:`AccessResolver` asks user-service
  (``GET /internal/links/{principal_id}/{student_id}``, service token) and stores
  a positive answer as an observation made when the question was asked; so a
  lesson scheduled right after an invite is redeemed works before the event
  arrives. Negative answers are not cached: a link may appear any moment.

In a route:

    @router.get("/balances/{student_id}")
    async def balance(student_id: AccessibleStudentId, session: SessionDep): ...   # 404 unless visible

    @router.post("/lessons")
    async def schedule(body: LessonIn, access: StudentAccessDep, session: SessionDep):
        await access.ensure(body.student_id)
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from sqlalchemy import and_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth.deps import Caller, CurrentUser
from shared.db import SessionDep
from shared.errors import NotFound, ServiceUnavailable
from shared.events import EventHandler
from shared.events.catalogue import StudentLinked, StudentUnlinked, payload_as
from shared.tables import access_links

if TYPE_CHECKING:
    from shared.events.envelope import Envelope
    from shared.http import ServiceClient

log = logging.getLogger(__name__)

# the link relation that lets a caller of this role see a student
RELATION_FOR_ROLE = {"tutor": "tutor", "parent": "parent"}


# --- keeping the table: event handlers -------------------------------------------------


async def _record_link_state(
    session: AsyncSession,
    *,
    principal_id: uuid.UUID,
    student_id: uuid.UUID,
    relation: str,
    active: bool,
    observed_at: datetime,
) -> None:
    """Upsert a link's state unless the row already holds a newer observation."""
    statement = insert(access_links).values(
        principal_id=principal_id,
        student_id=student_id,
        relation=relation,
        active=int(active),
        updated_at=observed_at,
    )
    statement = statement.on_conflict_do_update(
        index_elements=[access_links.c.principal_id, access_links.c.student_id],
        set_={
            "relation": statement.excluded.relation,
            "active": statement.excluded.active,
            "updated_at": statement.excluded.updated_at,
        },
        where=access_links.c.updated_at < statement.excluded.updated_at,
    )
    await session.execute(statement)


async def on_student_linked(session: AsyncSession, envelope: Envelope) -> None:
    await _record_link_event(session, envelope, payload_as(envelope, StudentLinked), active=True)


async def on_student_unlinked(session: AsyncSession, envelope: Envelope) -> None:
    await _record_link_event(session, envelope, payload_as(envelope, StudentUnlinked), active=False)


async def _record_link_event(
    session: AsyncSession, envelope: Envelope, link: StudentLinked | StudentUnlinked, *, active: bool
) -> None:
    await _record_link_state(
        session,
        principal_id=link.principal_id,
        student_id=link.student_id,
        relation=link.relation,
        active=active,
        observed_at=envelope.occurred_at,
    )


ACCESS_LINK_HANDLERS: dict[str, EventHandler] = {
    StudentLinked.event_type: on_student_linked,
    StudentUnlinked.event_type: on_student_unlinked,
}


# --- answering: the resolver ------------------------------------------------------------


class AccessResolver:
    def __init__(self, http: ServiceClient) -> None:
        self._http = http
        self._links_url = http.settings.user_service_url.rstrip("/") + "/internal/links"

    async def can_access(self, session: AsyncSession, caller: Caller, student_id: uuid.UUID | str) -> bool:
        if caller.is_admin or caller.is_service:
            return True
        student = _as_uuid(student_id)
        if student is None:
            return False
        if caller.role == "student":
            return _as_uuid(caller.id) == student
        relation = RELATION_FOR_ROLE.get(caller.role)
        principal = _as_uuid(caller.id)
        if relation is None or principal is None:
            return False
        if await self._has_active_local_link(session, principal, student, relation):
            return True
        return await self._ask_user_service(session, principal, student, relation)

    async def ensure_student_access(self, session: AsyncSession, caller: Caller, student_id: uuid.UUID | str) -> None:
        """Raises NotFound unless the caller may see the student."""
        if not await self.can_access(session, caller, student_id):
            raise NotFound("Student not found")

    @staticmethod
    async def _has_active_local_link(
        session: AsyncSession, principal: uuid.UUID, student: uuid.UUID, relation: str
    ) -> bool:
        found = await session.scalar(
            select(access_links.c.active).where(
                and_(
                    access_links.c.principal_id == principal,
                    access_links.c.student_id == student,
                    access_links.c.relation == relation,
                )
            )
        )
        return bool(found)

    async def _ask_user_service(
        self, session: AsyncSession, principal: uuid.UUID, student: uuid.UUID, relation: str
    ) -> bool:
        # the answer describes the link no earlier than now: a later unlink event must still win
        asked_at = self._http.clock.now()
        response = await self._http.get(f"{self._links_url}/{principal}/{student}")
        if response.status_code == 404:
            return False
        if response.status_code != 200:
            log.error("user-service /internal/links answered HTTP %d", response.status_code)
            raise ServiceUnavailable("Cannot check access right now, try again")
        link = response.json()
        if link.get("active") is not True or link.get("relation") != relation:
            return False
        await _record_link_state(
            session, principal_id=principal, student_id=student, relation=relation, active=True, observed_at=asked_at
        )
        return True


def _as_uuid(value: uuid.UUID | str) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None


# --- in routes: dependencies --------------------------------------------------------------


class StudentAccess:
    """The resolver bound to one request's caller and transaction."""

    def __init__(self, resolver: AccessResolver, session: AsyncSession, caller: Caller) -> None:
        self._resolver = resolver
        self._session = session
        self.caller = caller

    async def can_access(self, student_id: uuid.UUID | str) -> bool:
        return await self._resolver.can_access(self._session, self.caller, student_id)

    async def ensure(self, student_id: uuid.UUID | str) -> None:
        await self._resolver.ensure_student_access(self._session, self.caller, student_id)


async def get_student_access(request: Request, session: SessionDep, caller: CurrentUser) -> StudentAccess:
    return StudentAccess(request.app.state.access, session, caller)


StudentAccessDep = Annotated[StudentAccess, Depends(get_student_access)]


async def accessible_student_id(student_id: uuid.UUID, access: StudentAccessDep) -> uuid.UUID:
    """The ``{student_id}`` path parameter, once the caller is known to see that student (else 404)."""
    await access.ensure(student_id)
    return student_id


AccessibleStudentId = Annotated[uuid.UUID, Depends(accessible_student_id)]
