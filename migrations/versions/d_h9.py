"""handling as the seeds run it: the first-handling unit, transfers and co-handling units on the case; the called versions of a process

Revision ID: d_h9
Revises: d_h10
Create Date: 2026-12-05 22:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd_h9'
down_revision = "d_h10"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('process_definition', schema=None) as batch_op:
        batch_op.add_column(sa.Column('calls', sa.JSON(), nullable=True))
    with op.batch_alter_table('dispute_case', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_handling_unit', sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column('transfers', sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column('co_units', sa.JSON(), nullable=True))
        batch_op.create_index('ix_dispute_case_first_handling_unit', ['first_handling_unit'])


def downgrade():
    with op.batch_alter_table('process_definition', schema=None) as batch_op:
        batch_op.drop_column('calls')
    with op.batch_alter_table('dispute_case', schema=None) as batch_op:
        batch_op.drop_index('ix_dispute_case_first_handling_unit')
        batch_op.drop_column('co_units')
        batch_op.drop_column('transfers')
        batch_op.drop_column('first_handling_unit')
