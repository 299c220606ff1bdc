"""task lists at city scale: the queue index in the lists' order (due, created, case, task)

Revision ID: d_h15queue
Revises: d_h15due
Create Date: 2026-12-07 04:00:00

A unit's candidate task list is its ready rows of one role, the most urgent first
(`due_at` ascending, tasks without a deadline last, then created_at, case id, task id).
With the index on (state, unit_code, role) alone PostgreSQL read every ready task of the
queue and sorted them to show a page (7,500 for a department at 1,000,000 cases:
23-30 ms); with the order's columns after them the page is the index's first rows.
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'd_h15queue'
down_revision = "d_h15due"
branch_labels = None
depends_on = None

QUEUE = ['state', 'unit_code', 'role']
ORDER = ['due_at', 'created_at', 'case_id', 'id']


def upgrade():
    with op.batch_alter_table('case_task', schema=None) as batch_op:
        batch_op.drop_index('ix_case_task_queue')
        batch_op.create_index('ix_case_task_queue', QUEUE + ORDER, unique=False)


def downgrade():
    with op.batch_alter_table('case_task', schema=None) as batch_op:
        batch_op.drop_index('ix_case_task_queue')
        batch_op.create_index('ix_case_task_queue', QUEUE, unique=False)
