"""/api/v1/notifications/deliveries: the delivery log, newest first: every notification decided on for a user
(requested, deferred, suppressed, dropped) and what the bot answered (delivered, failed). The caller's own;
an admin reads any user's with ``?user_id=``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select, tuple_

from services.notification_service.models import Delivery
from shared.auth.deps import Person, user_id_of
from shared.db import SessionDep
from shared.errors import NotFound
from shared.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor, encode_cursor

router = APIRouter(prefix="/api/v1/notifications/deliveries", tags=["deliveries"])

Status = Literal["requested", "deferred", "suppressed", "dropped", "delivered", "failed"]


class DeliveryOut(BaseModel):
    id: uuid.UUID  # the notification_id of notification.requested / .delivered / .failed
    user_id: uuid.UUID
    kind: str
    template: str
    params: dict[str, Any]
    chat_id: int | None
    dedup_key: str
    status: str
    reason: str | None  # why deferred, suppressed, dropped or failed
    deliver_at: datetime | None  # deferred: when quiet hours end
    requested_at: datetime | None
    delivered_at: datetime | None
    failed_at: datetime | None
    created_at: datetime


@router.get("", response_model=Page[DeliveryOut])
async def delivery_log(
    caller: Person,
    session: SessionDep,
    user_id: Annotated[uuid.UUID | None, Query(description="another user's (admins only)")] = None,
    status: Annotated[Status | None, Query()] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[DeliveryOut]:
    me = user_id_of(caller)
    target = user_id or me
    if target != me and not caller.is_admin:
        raise NotFound("User not found")
    statement = select(Delivery).where(Delivery.user_id == target)
    if status is not None:
        statement = statement.where(Delivery.status == status)
    after = decode_cursor(cursor)
    if after is not None:
        statement = statement.where(tuple_(Delivery.created_at, Delivery.id) < after)
    rows = list(
        await session.scalars(statement.order_by(Delivery.created_at.desc(), Delivery.id.desc()).limit(limit + 1))
    )
    page, more = rows[:limit], len(rows) > limit
    return Page[DeliveryOut](
        items=[DeliveryOut.model_validate(r, from_attributes=True) for r in page],
        next_cursor=encode_cursor(page[-1].created_at, page[-1].id) if more else None,
    )
