"""/api/v1/notifications/preferences: the caller's own (an admin may read anyone's with ``?user_id=``):
which kinds are on, quiet hours in the user's time zone, the language of notifications, reminder offsets."""

from __future__ import annotations

import uuid
from datetime import time
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.dialects.postgresql import insert

from services.notification_service.domain import reminders
from services.notification_service.domain.delivery import KINDS, parse_hhmm
from services.notification_service.models import Recipient
from services.notification_service.settings import NotificationServiceSettings
from shared.auth.deps import Person, user_id_of
from shared.clock import Now
from shared.db import SessionDep
from shared.errors import NotFound

router = APIRouter(prefix="/api/v1/notifications/preferences", tags=["preferences"])

Kind = Literal[KINDS]  # type: ignore[valid-type]
HHMM = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["22:00"])]
Offset = Annotated[int, Field(ge=1, le=10_080, description="minutes before the lesson (at most a week)")]
MAX_OFFSETS = 5


class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: HHMM
    end: HHMM  # may be earlier than start: the window wraps midnight (22:00–08:00)

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self


class PreferencesIn(BaseModel):
    """The whole set (PUT replaces it); what is left out takes its default."""

    model_config = ConfigDict(extra="forbid")

    enabled_kinds: list[Kind] = Field(default_factory=lambda: list(KINDS), description="the kinds sent; others are not")
    quiet_hours: QuietHours | None = None
    language: Literal["ru", "en"] | None = Field(
        None, description="overrides the account's language; null: the account's"
    )
    reminder_offsets_minutes: list[Offset] | None = Field(
        None, min_length=1, max_length=MAX_OFFSETS, description="null: the service's default (1440 and 60)"
    )

    @field_validator("enabled_kinds", "reminder_offsets_minutes")
    @classmethod
    def _unique(cls, value: list[str] | list[int] | None) -> list[str] | list[int] | None:
        return None if value is None else list(dict.fromkeys(value))  # type: ignore[arg-type]


class PreferencesOut(PreferencesIn):
    user_id: uuid.UUID
    timezone: str  # the account's (user-service): quiet hours are read in it
    kinds: list[str] = Field(default_factory=lambda: list(KINDS), description="every kind there is")


def _hhmm(value: time) -> str:
    return value.strftime("%H:%M")


def _out(user_id: uuid.UUID, recipient: Recipient | None) -> PreferencesOut:
    if recipient is None:
        return PreferencesOut(user_id=user_id, timezone="UTC")
    quiet = None
    if recipient.quiet_hours_start is not None and recipient.quiet_hours_end is not None:
        quiet = QuietHours(start=_hhmm(recipient.quiet_hours_start), end=_hhmm(recipient.quiet_hours_end))
    return PreferencesOut(
        user_id=user_id,
        timezone=recipient.timezone,
        enabled_kinds=[kind for kind in KINDS if kind not in (recipient.disabled_kinds or ())],
        quiet_hours=quiet,
        language=recipient.preferred_language,  # type: ignore[arg-type]
        reminder_offsets_minutes=recipient.reminder_offsets_minutes,
    )


@router.get("", response_model=PreferencesOut)
async def read_preferences(
    caller: Person,
    session: SessionDep,
    user_id: Annotated[uuid.UUID | None, Query(description="another user's (admins only)")] = None,
) -> PreferencesOut:
    """The caller's preferences; an admin names any user the service knows. Anyone else naming another user
    gets 404."""
    me = user_id_of(caller)
    target = user_id or me
    recipient = await session.get(Recipient, target)
    if target != me and (not caller.is_admin or recipient is None):
        raise NotFound("User not found")
    return _out(target, recipient)


@router.put("", response_model=PreferencesOut)
async def replace_preferences(
    body: PreferencesIn, caller: Person, session: SessionDep, request: Request, now: Now
) -> PreferencesOut:
    """Replace the caller's preferences. New reminder offsets apply at once, to the caller's lessons already
    planned too (a reminder already sent stays sent)."""
    me = user_id_of(caller)
    values = {
        "disabled_kinds": [kind for kind in KINDS if kind not in body.enabled_kinds] or None,
        "quiet_hours_start": parse_hhmm(body.quiet_hours.start) if body.quiet_hours else None,
        "quiet_hours_end": parse_hhmm(body.quiet_hours.end) if body.quiet_hours else None,
        "preferred_language": body.language,
        "reminder_offsets_minutes": body.reminder_offsets_minutes,
    }
    # a user whose user.registered has not arrived yet: their facts fill in when it does
    statement = insert(Recipient).values(user_id=me, **values)
    await session.execute(statement.on_conflict_do_update(index_elements=[Recipient.user_id], set_=values))
    recipient = await session.get(Recipient, me, populate_existing=True)
    settings: NotificationServiceSettings = request.app.state.settings
    await reminders.replan_for_user(session, me, default_offsets=settings.default_reminder_offsets_minutes, now=now)
    return _out(me, recipient)
