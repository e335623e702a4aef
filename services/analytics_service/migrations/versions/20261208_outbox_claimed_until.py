"""outbox_events.claimed_until (decision 0024): the shared change, in this service's history

Revision ID: 6210795b0b06
Revises: d3ccb56c00b8
Create Date: 2026-12-08 00:40:00
"""
from typing import Sequence, Union

from shared.migrations.outbox import add_outbox_claimed_until, drop_outbox_claimed_until

revision: str = "6210795b0b06"
down_revision: Union[str, Sequence[str], None] = "d3ccb56c00b8"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    add_outbox_claimed_until()


def downgrade() -> None:
    drop_outbox_claimed_until()
