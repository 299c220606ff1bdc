"""statistics: assessment rule versions and closed monthly reports

Revision ID: d_stats
Revises: c3audit
Create Date: 2026-12-01 21:40:00

"""
from alembic import op
import sqlalchemy as sa

import engine.store.base

# revision identifiers, used by Alembic.
revision = 'd_stats'
down_revision = 'c3audit'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'assessment_rules',
        sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('effective_from', sa.String(length=7), nullable=False),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('deployed_at', engine.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('deployed_by', sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint('version', name=op.f('pk_assessment_rules')),
        sa.UniqueConstraint('sha256', name='uq_assessment_rules_sha256'),
    )
    op.create_table(
        'monthly_report',
        sa.Column('month', sa.String(length=7), nullable=False),
        sa.Column('rules_version', sa.Integer(), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('closed_at', engine.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('closed_by', sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint('month', name=op.f('pk_monthly_report')),
    )


def downgrade():
    op.drop_table('monthly_report')
    op.drop_table('assessment_rules')
