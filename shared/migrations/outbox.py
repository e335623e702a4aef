"""Changes to the shared tables (``shared/tables.py``), made in each service's own revisions: every
service's database carries them, so each service's history records the change, through one definition."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def add_outbox_claimed_until() -> None:
    """``outbox_events.claimed_until``: rows the committing process's relay publishes itself (decision 0024).
    Nullable, without a default: PostgreSQL adds it without rewriting the table."""
    op.add_column("outbox_events", sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))


def drop_outbox_claimed_until() -> None:
    op.drop_column("outbox_events", "claimed_until")
