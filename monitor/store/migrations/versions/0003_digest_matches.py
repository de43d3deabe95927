"""digest_matches: the matches each digest has carried (late commits, no repeats)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 11:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "digest_matches",
        sa.Column("digest", sa.String(length=100), nullable=False),
        sa.Column("match_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.ForeignKeyConstraint(
            ["match_id"],
            ["matches.id"],
            name=op.f("fk_digest_matches_match_id_matches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("digest", "match_id", name=op.f("pk_digest_matches")),
    )
    op.create_index(op.f("ix_digest_matches_match_id"), "digest_matches", ["match_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_digest_matches_match_id"), table_name="digest_matches")
    op.drop_table("digest_matches")
