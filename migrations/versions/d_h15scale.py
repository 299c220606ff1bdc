"""city scale: the workflow state in its own table, the units of each case (scope index), the chain head on the
case row, the supervision list indexed by status and due

Revision ID: d_h15scale
Revises: d_outbox
Create Date: 2026-12-02 07:20:00

Existing data is migrated: every case's state moves to `case_state` (and the column
leaves the case row; on PostgreSQL run `VACUUM FULL dispute_case` afterwards to give
the space back), and `case_unit` is filled from each case's community, routed and
current unit and the units of its tasks.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd_h15scale'
down_revision = "d_outbox"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        'case_state',
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('state', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['dispute_case.id'], name=op.f('fk_case_state_case_id_dispute_case')),
        sa.PrimaryKeyConstraint('case_id', name=op.f('pk_case_state')),
    )
    op.create_table(
        'case_unit',
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('unit_code', sa.String(length=50), nullable=False),
        sa.Column('community', sa.Boolean(), nullable=False),
        sa.Column('created_at', UTC, nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['dispute_case.id'], name=op.f('fk_case_unit_case_id_dispute_case')),
        sa.PrimaryKeyConstraint('case_id', 'unit_code', name=op.f('pk_case_unit')),
    )
    op.execute("INSERT INTO case_state (case_id, state) SELECT id, state FROM dispute_case")
    op.execute("INSERT INTO case_unit (case_id, unit_code, community, created_at) "
               "SELECT id, community_code, true, created_at FROM dispute_case")
    for source in ("SELECT id AS case_id, routed_unit AS unit_code, created_at FROM dispute_case "
                   "WHERE routed_unit IS NOT NULL",
                   "SELECT id AS case_id, current_unit AS unit_code, created_at FROM dispute_case "
                   "WHERE current_unit IS NOT NULL",
                   "SELECT DISTINCT t.case_id AS case_id, t.unit_code AS unit_code, c.created_at AS created_at "
                   "FROM case_task t "
                   "JOIN dispute_case c ON c.id = t.case_id WHERE t.unit_code IS NOT NULL"):
        # `WHERE true`: SQLite needs it to tell ON CONFLICT from a join constraint after a SELECT.
        op.execute(f"INSERT INTO case_unit (case_id, unit_code, created_at, community) "
                   f"SELECT s.case_id, s.unit_code, s.created_at, false FROM ({source}) AS s "
                   f"WHERE true ON CONFLICT (case_id, unit_code) DO NOTHING")
    op.create_index('ix_case_unit_scope', 'case_unit', ['unit_code', 'created_at', 'case_id'], unique=False)
    with op.batch_alter_table('dispute_case', schema=None) as batch_op:
        batch_op.drop_column('state')
        batch_op.add_column(sa.Column('chain_hash', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('chain_seq', sa.Integer(), nullable=True))
    op.create_index('ix_supervision_queue', 'supervision', ['status', 'due_at', 'id'], unique=False)
    op.create_index('ix_supervision_due', 'supervision', ['due_at', 'id'], unique=False)


def downgrade():
    op.drop_index('ix_supervision_due', table_name='supervision')
    op.drop_index('ix_supervision_queue', table_name='supervision')
    with op.batch_alter_table('dispute_case', schema=None) as batch_op:
        batch_op.drop_column('chain_seq')
        batch_op.drop_column('chain_hash')
        batch_op.add_column(sa.Column('state', sa.LargeBinary(), nullable=True))
    op.execute("UPDATE dispute_case SET state = (SELECT s.state FROM case_state s WHERE s.case_id = dispute_case.id)")
    with op.batch_alter_table('dispute_case', schema=None) as batch_op:
        batch_op.alter_column('state', existing_type=sa.LargeBinary(), nullable=False)
    op.drop_index('ix_case_unit_scope', table_name='case_unit')
    op.drop_table('case_unit')
    op.drop_table('case_state')
