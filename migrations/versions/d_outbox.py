"""outbox delivery: message kind, params, idempotency key, attempts, leases; contact settings of units and users

Revision ID: d_outbox
Revises: d_resilience
Create Date: 2026-12-01 21:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd_outbox'
down_revision = 'd_resilience'
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def _contact_columns():
    return [sa.Column('phone', sa.String(length=30), nullable=True),
            sa.Column('email', sa.String(length=200), nullable=True),
            sa.Column('webhook_url', sa.String(length=500), nullable=True),
            sa.Column('webhook_secret', sa.String(length=200), nullable=True),
            sa.Column('notify_channel', sa.String(length=10), nullable=True)]


def upgrade():
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=30), nullable=False, server_default='notice'))
        batch_op.add_column(sa.Column('params', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('idempotency_key', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('address', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('next_attempt_at', UTC, nullable=True))
        batch_op.add_column(sa.Column('lease_owner', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('lease_expires_at', UTC, nullable=True))
        batch_op.add_column(sa.Column('last_error', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('provider_ref', sa.String(length=100), nullable=True))
    # Rows written before delivery existed get a key of their own (the id is unique already).
    op.execute("UPDATE outbox SET idempotency_key = 'legacy-' || CAST(id AS VARCHAR(20)) "
               "WHERE idempotency_key IS NULL")
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.alter_column('idempotency_key', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('kind', existing_type=sa.String(length=30), server_default=None)
        batch_op.alter_column('attempts', existing_type=sa.Integer(), server_default=None)
        batch_op.create_unique_constraint(batch_op.f('uq_outbox_idempotency_key'), ['idempotency_key'])
        batch_op.create_index('ix_outbox_due', ['status', 'next_attempt_at'], unique=False)
    for table in ('unit', 'app_user'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in _contact_columns():
                batch_op.add_column(column)


def downgrade():
    for table in ('app_user', 'unit'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in reversed(_contact_columns()):
                batch_op.drop_column(column.name)
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_due')
        batch_op.drop_constraint(batch_op.f('uq_outbox_idempotency_key'), type_='unique')
        for name in ('provider_ref', 'last_error', 'lease_expires_at', 'lease_owner', 'next_attempt_at',
                     'attempts', 'address', 'idempotency_key', 'params', 'kind'):
            batch_op.drop_column(name)
