"""procedures: project approvals gated by stability assessments, assessment links, screening periods and findings, the people's-conditions log

Revision ID: d_h10
Revises: d_h13
Create Date: 2026-12-02 07:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd_h10'
down_revision = "d_h13"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        'project_approval',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('assessment_case_id', sa.Integer(), nullable=False),
        sa.Column('approved_by', sa.String(length=100), nullable=False),
        sa.Column('approved_at', UTC, nullable=False),
        sa.Column('note', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['assessment_case_id'], ['dispute_case.id'], name=op.f('fk_project_approval_assessment_case_id_dispute_case')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_project_approval')),
        sa.UniqueConstraint('assessment_case_id', name=op.f('uq_project_approval_assessment_case_id')),
    )
    op.create_table(
        'assessment_link',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('assessment_case_id', sa.Integer(), nullable=False),
        sa.Column('linked_by', sa.String(length=100), nullable=False),
        sa.Column('linked_at', UTC, nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['dispute_case.id'], name=op.f('fk_assessment_link_case_id_dispute_case')),
        sa.ForeignKeyConstraint(['assessment_case_id'], ['dispute_case.id'], name=op.f('fk_assessment_link_assessment_case_id_dispute_case')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_assessment_link')),
        sa.UniqueConstraint('case_id', 'assessment_case_id', name='uq_assessment_link'),
    )
    op.create_index(op.f('ix_assessment_link_case_id'), 'assessment_link', ['case_id'])
    op.create_index(op.f('ix_assessment_link_assessment_case_id'), 'assessment_link', ['assessment_case_id'])
    op.create_table(
        'screening_period',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('level', sa.String(length=30), nullable=False),
        sa.Column('period_start', sa.Date(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('units', sa.JSON(), nullable=False),
        sa.Column('opened_at', UTC, nullable=False),
        sa.Column('opened_by', sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['dispute_case.id'], name=op.f('fk_screening_period_case_id_dispute_case')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_screening_period')),
        sa.UniqueConstraint('level', 'period_start', name='uq_screening_period'),
    )
    op.create_index(op.f('ix_screening_period_case_id'), 'screening_period', ['case_id'])
    op.create_table(
        'screening_finding',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('period_id', sa.Integer(), nullable=False),
        sa.Column('unit_code', sa.String(length=50), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('recorded_at', UTC, nullable=False),
        sa.ForeignKeyConstraint(['period_id'], ['screening_period.id'], name=op.f('fk_screening_finding_period_id_screening_period')),
        sa.ForeignKeyConstraint(['case_id'], ['dispute_case.id'], name=op.f('fk_screening_finding_case_id_dispute_case')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_screening_finding')),
    )
    op.create_index(op.f('ix_screening_finding_period_id'), 'screening_finding', ['period_id'])
    op.create_index(op.f('ix_screening_finding_unit_code'), 'screening_finding', ['unit_code'])
    op.create_index(op.f('ix_screening_finding_case_id'), 'screening_finding', ['case_id'])
    op.create_table(
        'people_log',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('grid', sa.String(length=50), nullable=False),
        sa.Column('community_code', sa.String(length=50), nullable=False),
        sa.Column('worker', sa.String(length=100), nullable=False),
        sa.Column('household', sa.String(length=200), nullable=False),
        sa.Column('topic', sa.String(length=50), nullable=False),
        sa.Column('notes', sa.Text(), nullable=False),
        sa.Column('follow_up', sa.Text(), nullable=True),
        sa.Column('visited_on', sa.Date(), nullable=False),
        sa.Column('recorded_at', UTC, nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['case_id'], ['dispute_case.id'], name=op.f('fk_people_log_case_id_dispute_case')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_people_log')),
    )
    for col in ('grid', 'community_code', 'worker', 'topic', 'visited_on', 'case_id'):
        op.create_index(op.f(f'ix_people_log_{col}'), 'people_log', [col])


def downgrade():
    for col in ('grid', 'community_code', 'worker', 'topic', 'visited_on', 'case_id'):
        op.drop_index(op.f(f'ix_people_log_{col}'), table_name='people_log')
    op.drop_table('people_log')
    for name in ('period_id', 'unit_code', 'case_id'):
        op.drop_index(op.f(f'ix_screening_finding_{name}'), table_name='screening_finding')
    op.drop_table('screening_finding')
    op.drop_index(op.f('ix_screening_period_case_id'), table_name='screening_period')
    op.drop_table('screening_period')
    op.drop_index(op.f('ix_assessment_link_assessment_case_id'), table_name='assessment_link')
    op.drop_index(op.f('ix_assessment_link_case_id'), table_name='assessment_link')
    op.drop_table('assessment_link')
    op.drop_table('project_approval')
