"""story_bands: LSH band hashes of stories' MinHash signatures (near-duplicate lookup)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 10:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "story_bands",
        sa.Column("band", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("story_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.ForeignKeyConstraint(
            ["story_id"],
            ["stories.id"],
            name=op.f("fk_story_bands_story_id_stories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("band", "story_id", name=op.f("pk_story_bands")),
    )


def downgrade() -> None:
    op.drop_table("story_bands")
