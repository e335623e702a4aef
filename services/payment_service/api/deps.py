"""What payment-service routes need: the signed-in tutor, settings, and whose balance is meant."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy import select, union
from sqlalchemy.ext.asyncio import AsyncSession

from services.payment_service.domain.ledger import AccountKey
from services.payment_service.models import Account
from services.payment_service.settings import PaymentServiceSettings
from shared.auth.deps import Caller
from shared.errors import Unprocessable
from shared.tables import access_links


async def _settings(request: Request) -> PaymentServiceSettings:
    return request.app.state.settings


Settings = Annotated[PaymentServiceSettings, Depends(_settings)]


TutorQuery = Annotated[uuid.UUID | None, Query(description="whose balance, for a student with several tutors")]


async def account_key(
    session: AsyncSession, caller: Caller, student_id: uuid.UUID, tutor_id: uuid.UUID | None
) -> AccountKey | None:
    """The tutor–student account the caller means: a tutor's own; for anyone else ``tutor_id``
    or the student's only tutor (with a balance, or linked); None: the student has none yet."""
    if caller.role == "tutor":
        return AccountKey(uuid.UUID(caller.id), student_id)
    if tutor_id is not None:
        return AccountKey(tutor_id, student_id)
    with_balance = select(Account.tutor_id).where(Account.student_id == student_id)
    linked = select(access_links.c.principal_id).where(
        access_links.c.student_id == student_id, access_links.c.relation == "tutor", access_links.c.active == 1
    )
    tutors = (await session.scalars(union(with_balance, linked).limit(2))).all()
    if len(tutors) > 1:
        raise Unprocessable(
            "This student has balances with several tutors: name one",
            details=[{"field": "tutor_id", "message": "required for a student with several tutors", "type": "missing"}],
        )
    return AccountKey(tutors[0], student_id) if tutors else None
