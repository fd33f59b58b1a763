"""Rate buckets remember their portal's last web request, so jobs know when users are away.

Revision ID: 7a4d2c91e0b5
Revises: 3e8f52c8b706
Create Date: 2026-12-01 17:50:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7a4d2c91e0b5'
down_revision = '3e8f52c8b706'
branch_labels = None
depends_on = None


def upgrade():
    """Add the time of the last web request (unix time; empty: none yet)."""
    with op.batch_alter_table('rate_buckets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('web_at', sa.Float(), nullable=True))


def downgrade():
    """Drop it."""
    with op.batch_alter_table('rate_buckets', schema=None) as batch_op:
        batch_op.drop_column('web_at')
