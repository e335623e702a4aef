"""The tables every service carries in its own database (created by each service's migrations)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, LargeBinary, String, Table, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.db import SHARED_METADATA

# Events waiting to be published; written in the same transaction as the change they describe.
outbox_events = Table(
    "outbox_events",
    SHARED_METADATA,
    Column("id", UUID(as_uuid=True), primary_key=True),  # = the envelope's event_id
    Column("event_type", String(100), nullable=False),
    Column("envelope", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("published_at", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    # set when the transaction's own process has a relay that takes the events straight from the commit
    # (shared.events.relay): until then no other relay pass claims the row; a row still unpublished when
    # it passes (that process died first) is any pass's again
    Column("claimed_until", DateTime(timezone=True)),
    Index("ix_outbox_events_pending", "created_at", postgresql_where=text("published_at IS NULL")),
)

# Events already handled: a redelivered event finds its id here and has no second effect.
inbox_events = Table(
    "inbox_events",
    SHARED_METADATA,
    Column("event_id", UUID(as_uuid=True), primary_key=True),
    Column("event_type", String(100), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# First answers to POSTs carrying an Idempotency-Key, per caller.
idempotency_keys = Table(
    "idempotency_keys",
    SHARED_METADATA,
    Column("caller", String(100), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("method", String(10), nullable=False),
    Column("path", String(500), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer),  # NULL while the first request is still running
    Column("response_body", LargeBinary),
    Column("response_headers", JSONB),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Who may see which student: tutor -> student, parent -> student (from student.linked/unlinked).
access_links = Table(
    "access_links",
    SHARED_METADATA,
    Column("principal_id", UUID(as_uuid=True), primary_key=True),  # the tutor or the parent
    Column("student_id", UUID(as_uuid=True), primary_key=True),
    Column("relation", String(20), nullable=False),  # "tutor" | "parent"
    Column("active", Integer, nullable=False, server_default=text("1")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_access_links_student", "student_id"),
)
