"""student-service: study days and tutor-excused days for streaks; the student's time zone and freezes held

Revision ID: 5d1c0e7a9b21
Revises: ade724f8f63d
Create Date: 2026-11-26 08:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '5d1c0e7a9b21'
down_revision: Union[str, Sequence[str], None] = 'ade724f8f63d'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('study_days',
    sa.Column('student_id', sa.Uuid(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('student_id', 'day', name=op.f('pk_study_days'))
    )
    op.create_table('excused_days',
    sa.Column('student_id', sa.Uuid(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('student_id', 'day', name=op.f('pk_excused_days'))
    )
    op.add_column('profiles', sa.Column('timezone', sa.String(length=64), server_default='Europe/Moscow', nullable=False))
    op.add_column('profiles', sa.Column('freezes_held', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    op.drop_column('profiles', 'freezes_held')
    op.drop_column('profiles', 'timezone')
    op.drop_table('excused_days')
    op.drop_table('study_days')
