"""the overlap constraint may be deferred inside one statement group (moving a series' lessons together)

Revision ID: 3f6a0c5d8e21
Revises: 7b1d2c9e4a10
Create Date: 2026-11-26 07:05:00

Moving several lessons at once (``scope=following``) updates them one row at a time; a lesson may
for a moment overlap the old slot of one that is about to move too. The constraint becomes
DEFERRABLE INITIALLY IMMEDIATE: every statement is still checked at once, except inside the
savepoint where lesson-service defers it and checks the finished group (SET CONSTRAINTS ... IMMEDIATE).
"""
from typing import Sequence, Union

from alembic import op

revision: str = "3f6a0c5d8e21"
down_revision: Union[str, Sequence[str], None] = "7b1d2c9e4a10"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_DEFINITION = (
    "EXCLUDE USING gist (tutor_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&) WHERE (status <> 'cancelled')"
)


def upgrade() -> None:
    op.execute("ALTER TABLE lessons DROP CONSTRAINT ex_lessons_tutor_no_overlap")
    op.execute(
        f"ALTER TABLE lessons ADD CONSTRAINT ex_lessons_tutor_no_overlap {_DEFINITION} DEFERRABLE INITIALLY IMMEDIATE"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE lessons DROP CONSTRAINT ex_lessons_tutor_no_overlap")
    op.execute(f"ALTER TABLE lessons ADD CONSTRAINT ex_lessons_tutor_no_overlap {_DEFINITION}")
