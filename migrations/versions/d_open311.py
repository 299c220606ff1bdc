"""client systems and their API keys (Open311, integrated intake), and where each case came from

Revision ID: d_open311
Revises: d_stats
Create Date: 2026-12-01 21:50:00

"""
from alembic import op
import sqlalchemy as sa
import engine.store.base  # custom column types (UTCDateTime)


# revision identifiers, used by Alembic.
revision = 'd_open311'
down_revision = 'd_stats'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('api_client',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('key_prefix', sa.String(length=12), nullable=False),
    sa.Column('callback_url', sa.String(length=500), nullable=True),
    sa.Column('callback_secret', sa.String(length=200), nullable=True),
    sa.Column('revoked', sa.Boolean(), nullable=False),
    sa.Column('created_at', engine.store.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('last_used_at', engine.store.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_client')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_client_key_hash')),
    sa.UniqueConstraint('name', name=op.f('uq_api_client_name'))
    )
    op.create_table('case_source',
    sa.Column('case_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('external_ref', sa.String(length=100), nullable=True),
    sa.Column('token', sa.String(length=64), nullable=True),
    sa.Column('media_url', sa.String(length=500), nullable=True),
    sa.Column('placement', sa.String(length=20), nullable=False),
    sa.Column('created_at', engine.store.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['dispute_case.id'], name=op.f('fk_case_source_case_id_dispute_case')),
    sa.ForeignKeyConstraint(['client_id'], ['api_client.id'], name=op.f('fk_case_source_client_id_api_client')),
    sa.PrimaryKeyConstraint('case_id', name=op.f('pk_case_source')),
    sa.UniqueConstraint('client_id', 'external_ref', name='uq_case_source_client_ref'),
    sa.UniqueConstraint('token', name=op.f('uq_case_source_token'))
    )
    with op.batch_alter_table('case_source', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_source_client_id'), ['client_id'], unique=False)


def downgrade():
    with op.batch_alter_table('case_source', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_source_client_id'))
    op.drop_table('case_source')
    op.drop_table('api_client')
