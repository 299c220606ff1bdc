"""timer_worker: the heartbeat of every running timer worker (read by /readyz)

Revision ID: d_h15serve
Revises: d_h11
Create Date: 2026-12-02 07:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd_h15serve'
down_revision = "d_h11"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        'timer_worker',
        sa.Column('worker', sa.String(length=100), nullable=False),
        sa.Column('host', sa.String(length=100), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('started_at', UTC, nullable=False),
        sa.Column('heartbeat_at', UTC, nullable=False),
        sa.PrimaryKeyConstraint('worker'),
    )
    with op.batch_alter_table('timer_worker', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_timer_worker_heartbeat_at'), ['heartbeat_at'], unique=False)


def downgrade():
    with op.batch_alter_table('timer_worker', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_timer_worker_heartbeat_at'))
    op.drop_table('timer_worker')
