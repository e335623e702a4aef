"""an upload may carry an Idempotency-Key: one material per owner and key

Revision ID: 9c2e7f41b0d3
Revises: 6a586a7a6a18
Create Date: 2026-11-26 07:35:00

The shared idempotency table keeps whole responses for JSON bodies; an upload's body is a file of
up to 50 MB, so the material itself remembers the key and a fingerprint of the request (its fields
and the file's SHA-256): a retried upload answers the material it made the first time.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "9c2e7f41b0d3"
down_revision: Union[str, Sequence[str], None] = "6a586a7a6a18"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("materials", sa.Column("idempotency_key", sa.String(length=255), nullable=True))
    op.add_column("materials", sa.Column("request_hash", sa.String(length=64), nullable=True))
    op.create_index(
        "uq_materials_idempotency_key",
        "materials",
        ["owner_id", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_materials_idempotency_key", table_name="materials")
    op.drop_column("materials", "request_hash")
    op.drop_column("materials", "idempotency_key")
