"""statistics at city scale: indexes on the ranges a period's figures select (STATISTICS_INDEXES in the models)

Revision ID: d_h11
Revises: d_h15scale
Create Date: 2026-12-02 07:15:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'd_h11'
down_revision = "d_h15scale"
branch_labels = None
depends_on = None

INDEXES = (
    ('ix_case_task_ended_at', 'case_task', ['ended_at']),
    ('ix_case_task_warn_at', 'case_task', ['warn_at']),
    ('ix_case_event_at_type', 'case_event', ['at', 'type']),
    ('ix_dispute_case_closed_at', 'dispute_case', ['closed_at', 'created_at']),
    ('ix_supervision_opened_at', 'supervision', ['opened_at']),
    ('ix_supervision_closed_at', 'supervision', ['closed_at']),
)


def upgrade():
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade():
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
