"""deliveries.delivered_to: the recipients that took a mail others refused for now,
kept with the delivery so that its retry, by any instance, reaches only the rest

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 08:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as table:
        table.add_column(sa.Column("delivered_to", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as table:
        table.drop_column("delivered_to")
