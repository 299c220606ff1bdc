"""instance settings (what the instance is for: demo, training), and when a case was reported

Revision ID: d_clockdemo
Revises: d_org
Create Date: 2026-12-01 21:40:00

"""
from alembic import op
import sqlalchemy as sa

from engine.store.base import UTCDateTime

# revision identifiers, used by Alembic.
revision = 'd_clockdemo'
down_revision = 'd_org'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'instance_setting',
        sa.Column('key', sa.String(length=50), nullable=False),
        sa.Column('value', sa.String(length=200), nullable=False),
        sa.Column('set_at', UTCDateTime(), nullable=False),
        sa.Column('set_by', sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_instance_setting')),
    )
    with op.batch_alter_table('dispute_case', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reported_at', UTCDateTime(), nullable=True))
    # Cases registered before this column existed were reported when they were registered.
    op.execute("UPDATE dispute_case SET reported_at = created_at")
    with op.batch_alter_table('dispute_case', schema=None) as batch_op:
        batch_op.alter_column('reported_at', existing_type=UTCDateTime(), nullable=False)
        batch_op.create_index(batch_op.f('ix_dispute_case_reported_at'), ['reported_at'], unique=False)


def downgrade():
    with op.batch_alter_table('dispute_case', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dispute_case_reported_at'))
        batch_op.drop_column('reported_at')
    op.drop_table('instance_setting')
