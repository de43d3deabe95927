"""story_bands on SQLite: a WITHOUT ROWID table, its primary key the only b-tree

A rowid table kept each band twice, in the table and in its primary key's index, and
a cold pass's random inserts dirtied pages of both. PostgreSQL is unchanged.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 07:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _rebuild(with_rowid=False)


def downgrade() -> None:
    _rebuild(with_rowid=True)


def _rebuild(*, with_rowid: bool) -> None:
    """Copy story_bands into a table made with or without a rowid (SQLite only: it
    cannot change that in place), then put the copy in its place."""
    if op.get_bind().dialect.name != "sqlite":
        return
    op.create_table(
        "story_bands_rebuilt",
        sa.Column("band", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("story_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.ForeignKeyConstraint(
            ["story_id"],
            ["stories.id"],
            name=op.f("fk_story_bands_story_id_stories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("band", "story_id", name=op.f("pk_story_bands")),
        sqlite_with_rowid=with_rowid,
    )
    op.execute(
        "INSERT INTO story_bands_rebuilt (band, story_id) "
        "SELECT band, story_id FROM story_bands ORDER BY band, story_id"
    )
    op.drop_table("story_bands")
    op.rename_table("story_bands_rebuilt", "story_bands")
