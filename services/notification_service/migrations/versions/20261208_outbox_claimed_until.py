"""outbox_events.claimed_until (decision 0024): the shared change, in this service's history

Revision ID: ef39991c54f3
Revises: 7c1e2d4b9a30
Create Date: 2026-12-08 00:40:00
"""
from typing import Sequence, Union

from shared.migrations.outbox import add_outbox_claimed_until, drop_outbox_claimed_until

revision: str = "ef39991c54f3"
down_revision: Union[str, Sequence[str], None] = "7c1e2d4b9a30"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    add_outbox_claimed_until()


def downgrade() -> None:
    drop_outbox_claimed_until()
