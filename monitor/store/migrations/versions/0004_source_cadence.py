"""source_state.cadence: how often a source usually brings news (for staleness)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 19:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("source_state") as table:
        table.add_column(sa.Column("cadence", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("source_state") as table:
        table.drop_column("cadence")
