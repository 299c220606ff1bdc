"""statistics timelines: one case_fact row per case (engine/store/case_facts.py)

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


def downgrade():
    op.drop_table('case_fact')
