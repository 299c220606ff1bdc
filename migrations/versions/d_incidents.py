"""incidents: failed asynchronous work waiting for a person; failed-firing bookkeeping on case_timer

Revision ID: d_incidents
Revises: d_tracking
Create Date: 2026-12-01 21:45:00

"""
from alembic import op
import sqlalchemy as sa

from engine.store.base import UTCDateTime

# revision identifiers, used by Alembic.
revision = 'd_incidents'
down_revision = 'd_tracking'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'incident',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('source', sa.String(length=100), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=True),
        sa.Column('element', sa.String(length=100), nullable=True),
        sa.Column('error', sa.Text(), nullable=False),
        sa.Column('error_type', sa.String(length=100), nullable=True),
        sa.Column('details', sa.JSON(), nullable=True),
        sa.Column('tries', sa.Integer(), nullable=False),
        sa.Column('first_seen', UTCDateTime(), nullable=False),
        sa.Column('last_seen', UTCDateTime(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('resolved_at', UTCDateTime(), nullable=True),
        sa.Column('resolved_by', sa.String(length=100), nullable=True),
        sa.Column('resolution', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['case_id'], ['dispute_case.id'], name=op.f('fk_incident_case_id_dispute_case')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_incident')),
    )
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_status'), ['status'], unique=False)
        batch_op.create_index('uq_incident_open_source', ['kind', 'source'], unique=True,
                              sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))
    with op.batch_alter_table('case_timer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tries', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('retry_at', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('incident_id', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('case_timer', schema=None) as batch_op:
        batch_op.drop_column('incident_id')
        batch_op.drop_column('retry_at')
        batch_op.drop_column('tries')
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_index('uq_incident_open_source')
        batch_op.drop_index(batch_op.f('ix_incident_status'))
        batch_op.drop_index(batch_op.f('ix_incident_kind'))
        batch_op.drop_index(batch_op.f('ix_incident_case_id'))
    op.drop_table('incident')
