"""rename a column that does not exist

Revision ID: 9c8d7e6f5a40
Revises: 5b1e2c3d4f60
Create Date: 2026-11-26 04:10:00

This migration fails on every database: the release that carries it must not go live.
"""
from alembic import op


revision = '9c8d7e6f5a40'
down_revision = '5b1e2c3d4f60'
branch_labels = None
depends_on = None


def upgrade():
    op.alter_column('entries', 'no_such_column', new_column_name='still_missing')


def downgrade():
    pass
