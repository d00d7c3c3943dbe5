"""inspections: sampling inspections and their results per quality-standard dimension

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 04:52:12.531874

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('inspections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('licence_id', sa.Integer(), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('grade_code', sa.String(length=32), nullable=False),
    sa.Column('target_kind', sa.String(length=16), nullable=False),
    sa.Column('target_detail', sa.String(length=200), nullable=False),
    sa.Column('selection', sa.String(length=16), nullable=False),
    sa.Column('risk_weight', sa.Integer(), nullable=True),
    sa.Column('plan_note', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('lab_name', sa.String(length=200), nullable=True),
    sa.Column('sample_refs', sa.Text(), nullable=True),
    sa.Column('sampled_on', sa.Date(), nullable=True),
    sa.Column('report_ref', sa.String(length=100), nullable=True),
    sa.Column('result', sa.String(length=8), nullable=True),
    sa.Column('result_note', sa.Text(), nullable=True),
    sa.Column('trace_event_id', sa.Integer(), nullable=True),
    sa.Column('freeze_fen', sa.BigInteger(), nullable=True),
    sa.Column('dispute_instance_id', sa.Integer(), nullable=True),
    sa.Column('failure_count', sa.Integer(), nullable=True),
    sa.Column('expulsion_grounds', sa.Boolean(), nullable=False),
    sa.Column('protection_action', sa.String(length=16), nullable=True),
    sa.Column('protection_note', sa.Text(), nullable=True),
    sa.Column('expulsion_instance_id', sa.Integer(), nullable=True),
    sa.Column('planned_by', sa.Integer(), nullable=True),
    sa.Column('planned_at', sa.DateTime(), nullable=False),
    sa.Column('recorded_by', sa.Integer(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(), nullable=True),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("result is null or result in ('pass', 'fail')", name=op.f('ck_inspections_result')),
    sa.CheckConstraint("selection in ('manual', 'risk_draw')", name=op.f('ck_inspections_selection')),
    sa.CheckConstraint("status in ('planned', 'sampled', 'passed', 'failed', 'closed')", name=op.f('ck_inspections_status')),
    sa.CheckConstraint("target_kind in ('enterprise', 'base', 'outlet', 'product')", name=op.f('ck_inspections_target_kind')),
    sa.CheckConstraint('freeze_fen is null or freeze_fen >= 0', name=op.f('ck_inspections_freeze')),
    sa.ForeignKeyConstraint(['dispute_instance_id'], ['instances.id'], name=op.f('fk_inspections_dispute_instance_id_instances')),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises.id'], name=op.f('fk_inspections_enterprise_id_enterprises')),
    sa.ForeignKeyConstraint(['expulsion_instance_id'], ['instances.id'], name=op.f('fk_inspections_expulsion_instance_id_instances')),
    sa.ForeignKeyConstraint(['grade_code'], ['grades.code'], name=op.f('fk_inspections_grade_code_grades')),
    sa.ForeignKeyConstraint(['instance_id'], ['instances.id'], name=op.f('fk_inspections_instance_id_instances')),
    sa.ForeignKeyConstraint(['licence_id'], ['licences.id'], name=op.f('fk_inspections_licence_id_licences')),
    sa.ForeignKeyConstraint(['planned_by'], ['users.id'], name=op.f('fk_inspections_planned_by_users')),
    sa.ForeignKeyConstraint(['recorded_by'], ['users.id'], name=op.f('fk_inspections_recorded_by_users')),
    sa.ForeignKeyConstraint(['trace_event_id'], ['trace_events.id'], name=op.f('fk_inspections_trace_event_id_trace_events')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inspections')),
    sa.UniqueConstraint('instance_id', name=op.f('uq_inspections_instance_id'))
    )
    with op.batch_alter_table('inspections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inspections_enterprise_id'), ['enterprise_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inspections_licence_id'), ['licence_id'], unique=False)

    op.create_table('inspection_results',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('inspection_id', sa.Integer(), nullable=False),
    sa.Column('dimension_id', sa.Integer(), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('dimension_name', sa.String(length=100), nullable=False),
    sa.Column('requirement', sa.Text(), nullable=False),
    sa.Column('passed', sa.Boolean(), nullable=False),
    sa.Column('measured', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['inspection_id'], ['inspections.id'], name=op.f('fk_inspection_results_inspection_id_inspections')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inspection_results'))
    )
    with op.batch_alter_table('inspection_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inspection_results_inspection_id'), ['inspection_id'], unique=False)



def downgrade():
    with op.batch_alter_table('inspection_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inspection_results_inspection_id'))

    op.drop_table('inspection_results')
    with op.batch_alter_table('inspections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inspections_licence_id'))
        batch_op.drop_index(batch_op.f('ix_inspections_enterprise_id'))

    op.drop_table('inspections')
