"""deadline timers and supervision records

Revision ID: b2timers
Revises: a1org0identity
Create Date: 2026-11-23 03:20:00

"""
from alembic import op
import sqlalchemy as sa

import engine.store.models


# revision identifiers, used by Alembic.
revision = 'b2timers'
down_revision = 'a1org0identity'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('case_task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('due_estimated', sa.Boolean(), nullable=True))

    op.create_table('case_timer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.String(length=36), nullable=False),
    sa.Column('element', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('attached_task_id', sa.String(length=36), nullable=True),
    sa.Column('due_at', engine.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', sa.String(length=100), nullable=True),
    sa.Column('lease_until', engine.store.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', engine.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['dispute_case.id'], name=op.f('fk_case_timer_case_id_dispute_case')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_timer')),
    sa.UniqueConstraint('case_id', 'task_id', name='uq_case_timer_task'),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('case_timer', schema=None) as batch_op:
        batch_op.create_index('ix_case_timer_due', ['due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_case_timer_case_id'), ['case_id'], unique=False)

    op.create_table('supervision',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.String(length=36), nullable=True),
    sa.Column('step', sa.String(length=100), nullable=False),
    sa.Column('step_name', sa.String(length=200), nullable=False),
    sa.Column('unit_code', sa.String(length=50), nullable=True),
    sa.Column('due_at', engine.store.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('opened_at', engine.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('closed_at', engine.store.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_by', sa.String(length=100), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['dispute_case.id'], name=op.f('fk_supervision_case_id_dispute_case')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_supervision'))
    )
    with op.batch_alter_table('supervision', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_supervision_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_supervision_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_supervision_unit_code'), ['unit_code'], unique=False)


def downgrade():
    with op.batch_alter_table('case_task', schema=None) as batch_op:
        batch_op.drop_column('due_estimated')
    op.drop_table('supervision')
    op.drop_table('case_timer')
