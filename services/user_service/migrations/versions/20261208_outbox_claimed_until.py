"""outbox_events.claimed_until (decision 0024): the shared change, in this service's history

Revision ID: f45b577b44f6
Revises: c2c890bad49b
Create Date: 2026-12-08 00:40:00
"""
from typing import Sequence, Union

from shared.migrations.outbox import add_outbox_claimed_until, drop_outbox_claimed_until

revision: str = "f45b577b44f6"
down_revision: Union[str, Sequence[str], None] = "c2c890bad49b"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    add_outbox_claimed_until()


def downgrade() -> None:
    drop_outbox_claimed_until()
