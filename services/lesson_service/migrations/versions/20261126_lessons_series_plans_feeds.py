"""lessons, series, study plans, user time zones, calendar feeds; no double booking (btree_gist)

Revision ID: 7b1d2c9e4a10
Revises:
Create Date: 2026-11-26 07:00:00

btree_gist is a trusted extension (PostgreSQL 13+): the service's role, which owns its
database, may create it without being a superuser, so no provisioning change is needed.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision: str = "7b1d2c9e4a10"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.create_table(
        "lesson_series",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tutor_id", sa.Uuid(), nullable=False),
        sa.Column("student_id", sa.Uuid(), nullable=False),
        sa.Column("rule", sa.String(length=500), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lesson_series")),
    )
    op.create_index(op.f("ix_lesson_series_tutor_id"), "lesson_series", ["tutor_id"], unique=False)
    op.create_table(
        "study_plan_topics",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tutor_id", sa.Uuid(), nullable=False),
        sa.Column("student_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_study_plan_topics")),
    )
    op.create_index("ix_study_plan_topics_plan", "study_plan_topics", ["tutor_id", "student_id", "position"], unique=False)
    op.create_table(
        "lessons",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tutor_id", sa.Uuid(), nullable=False),
        sa.Column("student_id", sa.Uuid(), nullable=False),
        sa.Column("series_id", sa.Uuid(), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("topic", sa.String(length=500), nullable=True),
        sa.Column("plan_topic_id", sa.Uuid(), nullable=True),
        sa.Column("lesson_type", sa.String(length=20), server_default="regular", nullable=False),
        sa.Column("price", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("online_url", sa.String(length=1000), nullable=True),
        sa.Column("place", sa.String(length=500), nullable=True),
        sa.Column("status", sa.String(length=20), server_default="scheduled", nullable=False),
        sa.Column("chargeable", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_by", sa.Uuid(), nullable=True),
        sa.Column("cancelled_by_role", sa.String(length=20), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("excused_by", sa.Uuid(), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attendance", sa.String(length=20), nullable=True),
        sa.Column("grade", sa.Integer(), nullable=True),
        sa.Column("mastery", sa.String(length=20), nullable=True),
        sa.Column("mastery_comment", sa.Text(), nullable=True),
        sa.Column("skills", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("missed_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status IN ('scheduled', 'completed', 'cancelled', 'missed')", name=op.f("ck_lessons_status")),
        sa.CheckConstraint("lesson_type IN ('regular', 'trial', 'exam_prep')", name=op.f("ck_lessons_lesson_type")),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_lessons_ends_after_start")),
        sa.CheckConstraint("(price IS NULL) = (currency IS NULL)", name=op.f("ck_lessons_price_has_currency")),
        sa.CheckConstraint("price IS NULL OR price >= 0", name=op.f("ck_lessons_price_not_negative")),
        sa.CheckConstraint("grade IS NULL OR grade BETWEEN 1 AND 5", name=op.f("ck_lessons_grade_range")),
        sa.CheckConstraint(
            "attendance IS NULL OR attendance IN ('present', 'late', 'absent')", name=op.f("ck_lessons_attendance")
        ),
        sa.CheckConstraint(
            "mastery IS NULL OR mastery IN ('not_learned', 'learned', 'mastered')", name=op.f("ck_lessons_mastery")
        ),
        sa.ForeignKeyConstraint(
            ["series_id"], ["lesson_series.id"], name=op.f("fk_lessons_series_id_lesson_series"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["plan_topic_id"],
            ["study_plan_topics.id"],
            name=op.f("fk_lessons_plan_topic_id_study_plan_topics"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lessons")),
    )
    # two lessons of one tutor that are not cancelled never overlap ([start, end): back to back is fine)
    op.execute(
        "ALTER TABLE lessons ADD CONSTRAINT ex_lessons_tutor_no_overlap EXCLUDE USING gist "
        "(tutor_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&) WHERE (status <> 'cancelled')"
    )
    op.create_index("ix_lessons_tutor_starts", "lessons", ["tutor_id", "starts_at", "id"], unique=False)
    op.create_index("ix_lessons_student_starts", "lessons", ["student_id", "starts_at", "id"], unique=False)
    op.create_index(op.f("ix_lessons_series_id"), "lessons", ["series_id"], unique=False)
    op.create_index(op.f("ix_lessons_plan_topic_id"), "lessons", ["plan_topic_id"], unique=False)
    op.create_table(
        "user_profiles",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_profiles")),
    )
    op.create_table(
        "calendar_feeds",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_calendar_feeds")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_calendar_feeds_token_hash")),
    )
    # the tables every service carries (shared/tables.py)
    op.create_table(
        "access_links",
        sa.Column("principal_id", sa.UUID(), nullable=False),
        sa.Column("student_id", sa.UUID(), nullable=False),
        sa.Column("relation", sa.String(length=20), nullable=False),
        sa.Column("active", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("principal_id", "student_id", name=op.f("pk_access_links")),
    )
    op.create_index("ix_access_links_student", "access_links", ["student_id"], unique=False)
    op.create_table(
        "idempotency_keys",
        sa.Column("caller", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.LargeBinary(), nullable=True),
        sa.Column("response_headers", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("caller", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_table(
        "inbox_events",
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_inbox_events")),
    )
    op.create_table(
        "outbox_events",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("envelope", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
    )
    op.create_index(
        "ix_outbox_events_pending", "outbox_events", ["created_at"], unique=False,
        postgresql_where=sa.text("published_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("outbox_events")
    op.drop_table("inbox_events")
    op.drop_table("idempotency_keys")
    op.drop_table("access_links")
    op.drop_table("calendar_feeds")
    op.drop_table("user_profiles")
    op.drop_table("lessons")
    op.drop_table("study_plan_topics")
    op.drop_table("lesson_series")
