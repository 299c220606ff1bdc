"""citizens' tracking codes, stored as sha256 digests (one per case)

Revision ID: d_tracking
Revises: d_clockdemo
Create Date: 2026-12-01 21:40:00

"""
from alembic import op
import sqlalchemy as sa

from engine.store.base import UTCDateTime

# revision identifiers, used by Alembic.
revision = 'd_tracking'
down_revision = 'd_clockdemo'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'tracking_code',
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['dispute_case.id'], ),
        sa.PrimaryKeyConstraint('code_hash'),
        sa.UniqueConstraint('case_id'),
    )


def downgrade():
    op.drop_table('tracking_code')
