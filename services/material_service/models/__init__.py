"""material-service tables. ``Base`` is what the shared Alembic environment targets.

- ``blobs``: one row per distinct content (SHA-256), with how many materials reference it;
  the file lives at ``<blob_dir>/<aa>/<bb>/<sha256>`` and is removed after the commit that
  drops the count to zero.
- ``materials``: a file (``sha256`` set) or a link (``url`` set), with its metadata; a
  student's own file (``owner_role = 'student'``) is seen only by them and their tutors.
- ``material_shares``: the students a tutor's material is shared with (``share_all`` on the
  material: all of the tutor's students).
- ``material_views``: one row per student and material: ``material.viewed`` is said once.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import make_base

Base = make_base()

EAGER_DEFAULTS = {"eager_defaults": True}


class Blob(Base):
    __tablename__ = "blobs"
    __table_args__ = (
        CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="sha256_hex"),
        CheckConstraint("refcount >= 0", name="refcount_not_negative"),
    )

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(100))
    refcount: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Material(Base):
    __tablename__ = "materials"
    __mapper_args__ = EAGER_DEFAULTS
    __table_args__ = (
        CheckConstraint("owner_role IN ('tutor', 'student', 'admin')", name="owner_role"),
        CheckConstraint("(sha256 IS NULL) <> (url IS NULL)", name="file_or_link"),
        CheckConstraint("grade IS NULL OR grade BETWEEN 1 AND 11", name="grade"),
        Index("ix_materials_owner", "owner_id", "created_at", "id"),
        Index("ix_materials_tags", "tags", postgresql_using="gin"),
        Index("ix_materials_sha256", "sha256"),
        # a retried upload (the same Idempotency-Key) answers the material it made the first time
        Index(
            "uq_materials_idempotency_key",
            "owner_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID]
    owner_role: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(String(100))
    grade: Mapped[int | None] = mapped_column(Integer)
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(50)), default=list, server_default=text("'{}'"))
    description: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(2000))
    sha256: Mapped[str | None] = mapped_column(String(64), ForeignKey("blobs.sha256"))
    size: Mapped[int | None] = mapped_column(BigInteger)
    content_type: Mapped[str | None] = mapped_column(String(100))
    filename: Mapped[str | None] = mapped_column(String(255))
    homework_id: Mapped[uuid.UUID | None]
    share_all: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))  # the fields and the file's SHA-256
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class MaterialShare(Base):
    __tablename__ = "material_shares"
    __table_args__ = (Index("ix_material_shares_student", "student_id"),)

    material_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("materials.id", ondelete="CASCADE"), primary_key=True)
    student_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class MaterialView(Base):
    __tablename__ = "material_views"

    material_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("materials.id", ondelete="CASCADE"), primary_key=True)
    student_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    viewed_at: Mapped[datetime] = mapped_column(server_default=func.now())
