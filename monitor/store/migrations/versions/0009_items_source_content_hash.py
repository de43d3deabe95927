"""items (source, content_hash): an entry found again under another name by its link
and text (a GUID spelled anew, a link that stopped or started being shared)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 14:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_items_source_content_hash"), "items", ["source", "content_hash"])


def downgrade() -> None:
    op.drop_index(op.f("ix_items_source_content_hash"), table_name="items")
