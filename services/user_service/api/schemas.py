"""Request and response bodies. Requests ignore unknown fields and bound every string."""

from __future__ import annotations

import uuid
import zoneinfo
from datetime import datetime
from typing import Annotated, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from services.user_service.models import User

# Read once: the set of IANA names from the system database or the tzdata package.
IANA_TIME_ZONES = frozenset(zoneinfo.available_timezones())


def _normalise_email(value: str) -> str:
    try:
        # test_environment admits the reserved .test domain used by test accounts; no mail is
        # sent to these addresses, and deliverability (DNS) is never checked on a request path.
        checked = validate_email(value, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return checked.normalized.lower()


def _known_time_zone(value: str) -> str:
    if value not in IANA_TIME_ZONES:
        raise ValueError("not an IANA time zone name, e.g. Europe/Moscow")
    return value


Email = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=3, max_length=254), AfterValidator(_normalise_email)
]
Password = Annotated[str, Field(min_length=8, max_length=128)]
FullName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
TimeZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_known_time_zone)]
Language = Literal["en", "ru"]
# Telegram's deep-link limit, and the alphabet our codes are drawn from
InviteCode = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
OpaqueToken = Annotated[str, StringConstraints(min_length=1, max_length=256)]
TelegramId = Annotated[int, Field(gt=0, lt=2**63)]


class Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


# --- auth --------------------------------------------------------------------------


class RegisterRequest(Request):
    email: Email
    password: Password
    full_name: FullName
    timezone: TimeZone | None = None
    language: Language | None = None
    invite_code: InviteCode | None = None


class LoginRequest(Request):
    email: Email  # normalised exactly as at registration, or the same address would not match
    password: Annotated[str, Field(min_length=1, max_length=128)]


class RefreshRequest(Request):
    refresh_token: OpaqueToken


class TelegramSignInRequest(Request):
    telegram_id: TelegramId
    full_name: FullName
    language: Language | None = None
    invite_code: InviteCode | None = None


class ClientCredentialsRequest(Request):
    grant_type: Literal["client_credentials"]
    client_id: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    client_secret: Annotated[str, StringConstraints(min_length=1, max_length=256)]


# --- answers -----------------------------------------------------------------------


class UserOut(BaseModel):
    id: uuid.UUID
    email: str | None
    full_name: str
    role: str
    timezone: str
    language: str
    telegram_id: int | None

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            email=user.email,
            full_name=user.full_name,
            role=user.role,
            timezone=user.timezone,
            language=user.language,
            telegram_id=user.telegram_id,
        )


class TokenOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class SessionOut(TokenOut):
    user: UserOut


class ServiceTokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


# --- users -------------------------------------------------------------------------


class ProfileUpdate(Request):
    """Only the fields present change; none of them may be set to null."""

    full_name: FullName | None = None
    timezone: TimeZone | None = None
    language: Language | None = None

    @field_validator("full_name", "timezone", "language", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # runs only for fields the client sent; a missing field keeps its value
        if value is None:
            raise ValueError("may be omitted but not null")
        return value


class InviteRequest(Request):
    role: Literal["student", "parent"]
    student_id: uuid.UUID | None = None


class InviteOut(BaseModel):
    code: str
    deep_link: str
    expires_at: datetime


class StudentOut(UserOut):
    linked_at: datetime


class LinkOut(BaseModel):
    principal_id: uuid.UUID
    student_id: uuid.UUID
    relation: Literal["tutor", "parent"]
    active: bool = True


class ContactOut(BaseModel):
    """Someone linked to the caller; no email or Telegram id (the caller may not see those)."""

    id: uuid.UUID
    full_name: str
    role: str
    language: str
    timezone: str
    relation: Literal["tutor", "student", "parent", "child"]
    student_id: uuid.UUID  # the student the link is about (a parent's child, a tutor's student)


class ContactsOut(BaseModel):
    items: list[ContactOut]
