"""items.body_hash, indexed with the source: a source's items with one body (a paywall
notice under several headlines) found without reading all of its items

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from monitor.dedup import body_hash
from monitor.store.migrations.backfill import fill_items

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as table:
        table.add_column(sa.Column("body_hash", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_items_source_body_hash"), "items", ["source", "body_hash"])
    fill_items("body_hash", "body", body_hash)


def downgrade() -> None:
    op.drop_index(op.f("ix_items_source_body_hash"), table_name="items")
    # ALTER TABLE, not batch mode: on SQLite, batch mode rebuilds items, and dropping the
    # old table deletes every match and delivery through their ON DELETE CASCADE.
    op.drop_column("items", "body_hash")
