"""Portals, user tokens and binding history.

Timestamps are UTC (``b24app.models.UTCDateTime`` over ``DateTime(timezone=True)``); token
columns hold Fernet ciphertext only.

Revision ID: 236c82827218
Revises: 
Create Date: 2026-11-26 17:57:54.488359

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '236c82827218'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    """Create the three tables."""
    op.create_table('portals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.String(length=64), nullable=False),
    sa.Column('domain', sa.String(length=255), nullable=False),
    sa.Column('client_endpoint', sa.String(length=512), nullable=False),
    sa.Column('application_token_encrypted', sa.Text(), nullable=True),
    sa.Column('scope', sa.String(length=512), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('installer_user_id', sa.Integer(), nullable=True),
    sa.Column('installed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('uninstalled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_portals')),
    sa.UniqueConstraint('member_id', name=op.f('uq_portals_member_id'))
    )
    op.create_table('binding_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('portal_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.BigInteger(), nullable=False),
    sa.Column('owner_type_id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.BigInteger(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('error_code', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['portal_id'], ['portals.id'], name=op.f('fk_binding_records_portal_id_portals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_binding_records'))
    )
    with op.batch_alter_table('binding_records', schema=None) as batch_op:
        batch_op.create_index('ix_binding_records_portal_created', ['portal_id', 'created_at'], unique=False)
        batch_op.create_index('ix_binding_records_portal_order', ['portal_id', 'order_id'], unique=False)

    op.create_table('user_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('portal_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('access_token_encrypted', sa.Text(), nullable=False),
    sa.Column('refresh_token_encrypted', sa.Text(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('scope', sa.String(length=512), nullable=False),
    sa.Column('invalid_grant_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['portal_id'], ['portals.id'], name=op.f('fk_user_tokens_portal_id_portals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_tokens')),
    sa.UniqueConstraint('portal_id', 'user_id', name=op.f('uq_user_tokens_portal_id_user_id'))
    )


def downgrade():
    """Drop the three tables."""
    op.drop_table('user_tokens')
    with op.batch_alter_table('binding_records', schema=None) as batch_op:
        batch_op.drop_index('ix_binding_records_portal_order')
        batch_op.drop_index('ix_binding_records_portal_created')

    op.drop_table('binding_records')
    op.drop_table('portals')
