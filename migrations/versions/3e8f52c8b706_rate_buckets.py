"""Per-portal request buckets shared through the database (no Redis).

Revision ID: 3e8f52c8b706
Revises: 5359ac347da3
Create Date: 2026-12-01 12:32:19.585896

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '3e8f52c8b706'
down_revision = '5359ac347da3'
branch_labels = None
depends_on = None


def upgrade():
    """Create the bucket table."""
    op.create_table('rate_buckets',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('level', sa.Float(), nullable=False),
    sa.Column('since', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_rate_buckets'))
    )


def downgrade():
    """Drop it."""
    op.drop_table('rate_buckets')
