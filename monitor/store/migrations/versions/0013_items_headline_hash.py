"""items.headline_hash, indexed: the stored items under a paywall notice's headline, from
any source, found without reading every title

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from monitor.dedup import headline_hash
from monitor.store.migrations.backfill import fill_items

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as table:
        table.add_column(sa.Column("headline_hash", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_items_headline_hash"), "items", ["headline_hash"])
    fill_items("headline_hash", "title", headline_hash)


def downgrade() -> None:
    op.drop_index(op.f("ix_items_headline_hash"), table_name="items")
    # ALTER TABLE, not batch mode: on SQLite, batch mode rebuilds items, and dropping the
    # old table deletes every match and delivery through their ON DELETE CASCADE.
    op.drop_column("items", "headline_hash")
