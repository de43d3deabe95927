"""source_state.not_before: a server's floor for the next poll (Retry-After, max-age),
which even `monitor run --once` waits for

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 19:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("source_state") as table:
        table.add_column(sa.Column("not_before", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("source_state") as table:
        table.drop_column("not_before")
