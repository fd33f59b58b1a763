"""Binding history details (who, order number, titles, replaced owner, undo links) and portal catalogs.

Revision ID: 095db8a52c6c
Revises: 236c82827218
Create Date: 2026-12-01 11:22:52.700022

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '095db8a52c6c'
down_revision = '236c82827218'
branch_labels = None
depends_on = None


def upgrade():
    """Add the history columns and the catalog table."""
    op.create_table('portal_catalogs',
    sa.Column('portal_id', sa.Integer(), nullable=False),
    sa.Column('lang', sa.String(length=8), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['portal_id'], ['portals.id'], name=op.f('fk_portal_catalogs_portal_id_portals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('portal_id', 'lang', name=op.f('pk_portal_catalogs'))
    )
    with op.batch_alter_table('binding_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('user_name', sa.String(length=255), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('order_number', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('owner_title', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('replaced_owner_type_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('replaced_owner_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('replaced_owner_title', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('undo_of_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('undone_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_binding_records_undone_by_id_binding_records'), 'binding_records', ['undone_by_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_binding_records_undo_of_id_binding_records'), 'binding_records', ['undo_of_id'], ['id'], ondelete='SET NULL')



def downgrade():
    """Drop them again."""
    with op.batch_alter_table('binding_records', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_binding_records_undo_of_id_binding_records'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_binding_records_undone_by_id_binding_records'), type_='foreignkey')
        batch_op.drop_column('undone_by_id')
        batch_op.drop_column('undo_of_id')
        batch_op.drop_column('replaced_owner_title')
        batch_op.drop_column('replaced_owner_id')
        batch_op.drop_column('replaced_owner_type_id')
        batch_op.drop_column('owner_title')
        batch_op.drop_column('order_number')
        batch_op.drop_column('user_name')

    op.drop_table('portal_catalogs')
