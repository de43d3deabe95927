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

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# Rows hashed per round trip: the bodies of a round are held in memory at once.
CHUNK = 1000


def upgrade() -> None:
    with op.batch_alter_table("items") as table:
        table.add_column(sa.Column("body_hash", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_items_source_body_hash"), "items", ["source", "body_hash"])
    _hash_stored_bodies()


def _hash_stored_bodies() -> None:
    """Every stored row's body hash, in rounds of CHUNK rows by id: a row without one
    would never be found as a body its source carries."""
    connection = op.get_bind()
    items = sa.table("items", sa.column("id"), sa.column("body"), sa.column("body_hash"))
    fill = items.update().where(items.c.id == sa.bindparam("b_id"))
    last = 0
    while True:
        rows = connection.execute(
            sa.select(items.c.id, items.c.body)
            .where(items.c.id > last)
            .order_by(items.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            return
        connection.execute(
            fill.values(body_hash=sa.bindparam("b_hash")),
            [{"b_id": row.id, "b_hash": body_hash(row.body)} for row in rows],
        )
        last = rows[-1].id


def downgrade() -> None:
    op.drop_index(op.f("ix_items_source_body_hash"), table_name="items")
    # ALTER TABLE, not batch mode: on SQLite, batch mode rebuilds items, and dropping the
    # old table deletes every match and delivery through their ON DELETE CASCADE.
    op.drop_column("items", "body_hash")
