"""case lists: the deadline of each case's most urgent open step on the case row (overdue filter)

Revision ID: d_h15due
Revises: d_h11f
Create Date: 2026-12-06 05:30:00

`dispute_case.open_due_at` is the earliest due_at of the case's ready task rows (NULL when none
has one, and for closed cases), kept by the engine in every operation; the overdue filter of the
case lists is one range of its index. Filled here from the task rows of the open cases.
"""
from alembic import op
import sqlalchemy as sa

from engine.store.base import UTCDateTime


# revision identifiers, used by Alembic.
revision = 'd_h15due'
down_revision = "d_h11f"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('dispute_case', schema=None) as batch_op:
        batch_op.add_column(sa.Column('open_due_at', UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_dispute_case_open_due_at'), ['open_due_at'], unique=False)
    op.execute("UPDATE dispute_case SET open_due_at = (SELECT min(case_task.due_at) FROM case_task "
               "WHERE case_task.case_id = dispute_case.id AND case_task.state = 'ready') "
               "WHERE closed_at IS NULL")


def downgrade():
    with op.batch_alter_table('dispute_case', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dispute_case_open_due_at'))
        batch_op.drop_column('open_due_at')
