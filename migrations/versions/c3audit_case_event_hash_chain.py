"""case event hash chain (audit), and on PostgreSQL a trigger refusing UPDATE and DELETE of events

Revision ID: c3audit
Revises: b2timers
Create Date: 2026-11-23 04:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c3audit'
down_revision = 'b2timers'
branch_labels = None
depends_on = None

REFUSE = """
CREATE OR REPLACE FUNCTION case_event_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'case_event is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql
"""


def upgrade():
    with op.batch_alter_table('case_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('op_seq', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('state_digest', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('hash', sa.LargeBinary(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(REFUSE)
        op.execute("CREATE TRIGGER case_event_append_only BEFORE UPDATE OR DELETE ON case_event "
                   "FOR EACH ROW EXECUTE FUNCTION case_event_append_only()")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS case_event_append_only ON case_event")
        op.execute("DROP FUNCTION IF EXISTS case_event_append_only()")
    with op.batch_alter_table('case_event', schema=None) as batch_op:
        batch_op.drop_column('hash')
        batch_op.drop_column('state_digest')
        batch_op.drop_column('op_seq')
