"""source_state.fed_at: when a poll first brought a source entries; until then the
source is new, and its ``backfill`` applies (a first poll that found nothing, an empty
feed or a folder whose file was still being copied, does not use it up)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 14:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("source_state") as table:
        table.add_column(sa.Column("fed_at", sa.DateTime(), nullable=True))
    # A source polled before is taken as fed, as it was: its first poll is behind it.
    op.execute("UPDATE source_state SET fed_at = last_success WHERE last_success IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("source_state") as table:
        table.drop_column("fed_at")
