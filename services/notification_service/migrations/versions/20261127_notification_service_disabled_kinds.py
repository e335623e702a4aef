"""notification-service: a user's preferences keep the kinds switched off, not those left on

A list of the kinds left on left every kind added later off for whoever had changed anything; the
kinds switched off leave a new kind on, as for everyone else.

Revision ID: 7c1e2d4b9a30
Revises: 526548718e18
Create Date: 2026-11-27 06:00:00

"""
import json
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = '7c1e2d4b9a30'
down_revision: Union[str, Sequence[str], None] = '526548718e18'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# the kinds there were when this was written (domain/delivery.KINDS then): a migration does not follow the code
KINDS_THEN = (
    "lesson_reminder",
    "schedule_change",
    "homework_assigned",
    "homework_due",
    "homework_graded",
    "homework_submitted",
    "lesson_report",
    "payment_received",
    "balance_low",
    "level_up",
    "achievement_unlocked",
    "weekly_summary",
    "monthly_report",
    "alert",
)


def upgrade() -> None:
    op.add_column('recipients', sa.Column('disabled_kinds', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    _set_to_the_other_kinds('disabled_kinds', 'enabled_kinds')
    op.execute("UPDATE recipients SET disabled_kinds = NULL WHERE disabled_kinds = '[]'::jsonb")
    op.drop_column('recipients', 'enabled_kinds')


def downgrade() -> None:
    op.add_column('recipients', sa.Column('enabled_kinds', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    _set_to_the_other_kinds('enabled_kinds', 'disabled_kinds')
    op.drop_column('recipients', 'disabled_kinds')


def _set_to_the_other_kinds(column: str, listed: str) -> None:
    """``column`` := the kinds of KINDS_THEN not in ``listed``, where ``listed`` is set (NULL stays NULL)."""
    op.get_bind().execute(
        sa.text(
            f"UPDATE recipients SET {column} = ("
            "  SELECT coalesce(jsonb_agg(kind ORDER BY kind), '[]'::jsonb)"
            f"  FROM jsonb_array_elements_text(CAST(:kinds AS jsonb)) AS kind WHERE NOT {listed} ? kind"
            f") WHERE {listed} IS NOT NULL"
        ),
        {"kinds": json.dumps(KINDS_THEN)},
    )
