"""items.file: the file a folder document named by its title was read from, which tells
another document under one recurring title from an edit of the stored one

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as table:
        table.add_column(sa.Column("file", sa.Text(), nullable=True))


def downgrade() -> None:
    # ALTER TABLE, not batch mode: on SQLite, batch mode rebuilds items, and dropping the
    # old table deletes every match and delivery through their ON DELETE CASCADE.
    op.drop_column("items", "file")
