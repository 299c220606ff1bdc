"""organisation: units can be deactivated; a version stamp every worker watches

Revision ID: d_org
Revises: d_open311
"""
from alembic import op
import sqlalchemy as sa
import engine.store.models  # custom column types (UTCDateTime)


# revision identifiers, used by Alembic.
revision = 'd_org'
down_revision = 'd_open311'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('unit', schema=None) as batch_op:
        batch_op.add_column(sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False))
    op.create_table('org_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('changed_at', engine.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_org_version'))
    )
    # the one row, so that the first concurrent changes already serialise on it
    op.execute("INSERT INTO org_version (id, version, changed_at) VALUES (1, 0, CURRENT_TIMESTAMP)")


def downgrade():
    op.drop_table('org_version')
    with op.batch_alter_table('unit', schema=None) as batch_op:
        batch_op.drop_column('active')
