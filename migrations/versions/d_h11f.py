"""statistics timelines: one case_fact row per case (engine/store/case_facts.py); on PostgreSQL the backlog's span index

Revision ID: d_h11f
Revises: d_h9
Create Date: 2026-12-06 02:10:00

Cases started before this revision get no row: the statistics rebuild their timelines from
the task rows and the event log, which is what the rows are tested to equal.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd_h11f'
down_revision = "d_h9"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'case_fact',
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('timeline', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['dispute_case.id'], name=op.f('fk_case_fact_case_id_dispute_case')),
        sa.PrimaryKeyConstraint('case_id', name=op.f('pk_case_fact')),
    )
    if op.get_bind().dialect.name == "postgresql":
        # the backlog at an instant: cases accepted before it and not closed by it (engine.store.models)
        op.execute("CREATE INDEX ix_dispute_case_open_span ON dispute_case "
                   "USING gist (tstzrange(created_at, closed_at, '(]'))")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_dispute_case_open_span")
    op.drop_table('case_fact')
