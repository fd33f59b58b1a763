"""Bulk jobs and their items; binding history rows name their job.

Revision ID: 5359ac347da3
Revises: 095db8a52c6c
Create Date: 2026-12-01 12:23:35.409362

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5359ac347da3'
down_revision = '095db8a52c6c'
branch_labels = None
depends_on = None


def upgrade():
    """Create the job tables and link history rows to them."""
    op.create_table('jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('portal_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('user_name', sa.String(length=255), nullable=False),
    sa.Column('lang', sa.String(length=8), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('paused_reason', sa.String(length=64), nullable=True),
    sa.Column('owner_type_id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.BigInteger(), nullable=False),
    sa.Column('owner_title', sa.Text(), nullable=True),
    sa.Column('pending_filter', sa.Text(), nullable=True),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('undo_of_id', sa.Integer(), nullable=True),
    sa.Column('undone_by_id', sa.Integer(), nullable=True),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_run_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['portal_id'], ['portals.id'], name=op.f('fk_jobs_portal_id_portals'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['undo_of_id'], ['jobs.id'], name=op.f('fk_jobs_undo_of_id_jobs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['undone_by_id'], ['jobs.id'], name=op.f('fk_jobs_undone_by_id_jobs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs'))
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index('ix_jobs_claim', ['state', 'lease_until'], unique=False)
        batch_op.create_index('ix_jobs_portal_id', ['portal_id', 'id'], unique=False)

    op.create_table('job_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('batch_no', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.BigInteger(), nullable=False),
    sa.Column('order_number', sa.String(length=100), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('previous_owner_type_id', sa.Integer(), nullable=True),
    sa.Column('previous_owner_id', sa.BigInteger(), nullable=True),
    sa.Column('error_code', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_items_job_id_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_items')),
    sa.UniqueConstraint('job_id', 'order_id', name=op.f('uq_job_items_job_id_order_id'))
    )
    with op.batch_alter_table('job_items', schema=None) as batch_op:
        batch_op.create_index('ix_job_items_job_batch', ['job_id', 'batch_no'], unique=False)

    with op.batch_alter_table('binding_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('job_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_binding_records_job_id_jobs'), 'jobs', ['job_id'], ['id'], ondelete='SET NULL')



def downgrade():
    """Drop them again."""
    with op.batch_alter_table('binding_records', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_binding_records_job_id_jobs'), type_='foreignkey')
        batch_op.drop_column('job_id')

    with op.batch_alter_table('job_items', schema=None) as batch_op:
        batch_op.drop_index('ix_job_items_job_batch')

    op.drop_table('job_items')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_portal_id')
        batch_op.drop_index('ix_jobs_claim')

    op.drop_table('jobs')
