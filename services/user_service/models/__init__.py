"""user-service tables. ``Base`` is what the shared Alembic environment targets."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import make_base

Base = make_base()

USER_ROLES = ("tutor", "student", "parent", "admin")
INVITE_ROLES = ("student", "parent")
LINK_RELATIONS = ("tutor", "parent")
DEFAULT_TIMEZONE = "Europe/Moscow"
DEFAULT_LANGUAGE = "ru"


# INSERT/UPDATE ... RETURNING fills server-side defaults (created_at, updated_at) at once:
# an async session must never lazy-load an expired attribute.
EAGER_DEFAULTS = {"eager_defaults": True}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class User(Base):
    __tablename__ = "users"
    __mapper_args__ = EAGER_DEFAULTS
    __table_args__ = (
        CheckConstraint(_in("role", USER_ROLES), name="role"),
        CheckConstraint("email = lower(email)", name="email_lower_case"),
        CheckConstraint("email IS NOT NULL OR telegram_id IS NOT NULL", name="has_a_login"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    telegram_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    timezone: Mapped[str] = mapped_column(String(64), default=DEFAULT_TIMEZONE, server_default=DEFAULT_TIMEZONE)
    language: Mapped[str] = mapped_column(String(8), default=DEFAULT_LANGUAGE, server_default=DEFAULT_LANGUAGE)
    is_active: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class RefreshToken(Base):
    """One refresh token; a login starts a family, each refresh adds the next member.

    Only the SHA-256 of the token is stored. A member presented after it was
    rotated means the token leaked: the whole family is revoked.
    """

    __tablename__ = "refresh_tokens"
    __mapper_args__ = EAGER_DEFAULTS

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    family_id: Mapped[uuid.UUID] = mapped_column(index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime]
    rotated_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Invite(Base):
    """A tutor's one-time, expiring invitation for a student, or for a parent of one of their students."""

    __tablename__ = "invites"
    __mapper_args__ = EAGER_DEFAULTS
    __table_args__ = (
        CheckConstraint(_in("role", INVITE_ROLES), name="role"),
        CheckConstraint("(role = 'parent') = (student_id IS NOT NULL)", name="parent_invite_names_a_student"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)  # the code itself is shown once
    tutor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    student_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime]
    redeemed_at: Mapped[datetime | None]
    redeemed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class StudentLink(Base):
    """Tutor -> student or parent -> student. Unlinking keeps the row (``unlinked_at``) as history."""

    __tablename__ = "student_links"
    __mapper_args__ = EAGER_DEFAULTS
    __table_args__ = (
        CheckConstraint(_in("relation", LINK_RELATIONS), name="relation"),
        CheckConstraint("principal_id <> student_id", name="not_self"),
        # one active link per pair; a pair may be linked again after an unlink
        Index(
            "uq_student_links_active_pair",
            "principal_id",
            "student_id",
            unique=True,
            postgresql_where=text("unlinked_at IS NULL"),
        ),
        Index("ix_student_links_student_active", "student_id", postgresql_where=text("unlinked_at IS NULL")),
        # a tutor's students, in keyset order
        Index(
            "ix_student_links_principal_active",
            "principal_id",
            "created_at",
            "id",
            postgresql_where=text("unlinked_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    principal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    student_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    relation: Mapped[str] = mapped_column(String(20))
    tutor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))  # who made the link
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    unlinked_at: Mapped[datetime | None]


__all__ = [
    "DEFAULT_LANGUAGE",
    "DEFAULT_TIMEZONE",
    "INVITE_ROLES",
    "LINK_RELATIONS",
    "USER_ROLES",
    "Base",
    "Invite",
    "RefreshToken",
    "StudentLink",
    "User",
]
