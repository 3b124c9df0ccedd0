"""add likes to entries

Revision ID: 5b1e2c3d4f60
Revises: 0fa6799e3123
Create Date: 2026-11-26 04:00:00

An additive change with a server default: the previous release keeps working against it.
"""
from alembic import op
import sqlalchemy as sa


revision = '5b1e2c3d4f60'
down_revision = '0fa6799e3123'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('entries') as batch_op:
        batch_op.add_column(sa.Column('likes', sa.Integer(), nullable=False, server_default='0'))


def downgrade():
    with op.batch_alter_table('entries') as batch_op:
        batch_op.drop_column('likes')
