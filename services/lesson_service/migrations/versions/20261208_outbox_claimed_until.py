"""outbox_events.claimed_until (decision 0024): the shared change, in this service's history

Revision ID: e94490c8d2ef
Revises: 3f6a0c5d8e21
Create Date: 2026-12-08 00:40:00
"""
from typing import Sequence, Union

from shared.migrations.outbox import add_outbox_claimed_until, drop_outbox_claimed_until

revision: str = "e94490c8d2ef"
down_revision: Union[str, Sequence[str], None] = "3f6a0c5d8e21"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    add_outbox_claimed_until()


def downgrade() -> None:
    drop_outbox_claimed_until()
