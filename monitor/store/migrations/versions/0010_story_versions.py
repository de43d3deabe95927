"""story_versions: the fingerprints and signatures of stories' later versions (an edited
item's text), so that a copy of a story's later version joins it

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 14:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "story_versions",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("seen", sa.DateTime(), nullable=False),
        sa.Column("signature", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["story_id"],
            ["stories.id"],
            name=op.f("fk_story_versions_story_id_stories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_story_versions")),
    )
    op.create_index(op.f("ix_story_versions_story_id"), "story_versions", ["story_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_story_versions_story_id"), table_name="story_versions")
    op.drop_table("story_versions")
