"""Jobs remember the owners read before their next batch, and whether it may have landed.

Revision ID: b81e4f0c2d19
Revises: 7a4d2c91e0b5
Create Date: 2026-12-02 05:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b81e4f0c2d19'
down_revision = '7a4d2c91e0b5'
branch_labels = None
depends_on = None


def upgrade():
    """Add the next batch's owners as read (JSON) and the unconfirmed-batch flag."""
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seen_owners', sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column('unconfirmed', sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade():
    """Drop them."""
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('unconfirmed')
        batch_op.drop_column('seen_owners')
