"""Database schema (SQLAlchemy Core tables). Migrations in migrations/ mirror it.

Dedup and claims are constraints, not read-then-write: items are unique per
(source, key), stories per fingerprint, matches per (story, watch-list, revision),
deliveries per idempotency key.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC in Python, naive UTC in the database (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], Any] | None:
        """On SQLite, the text its DATETIME stores (``YYYY-MM-DD HH:MM:SS.ffffff``) in one
        call: SQLAlchemy's processor fills a format from a dict of the fields, and an
        ingest binds two datetimes an item."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            naive = self.process_bind_param(value, dialect)
            return None if naive is None else naive.isoformat(" ", "microseconds")

        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)


def _when(name: str, *, nullable: bool = False) -> Column[datetime]:
    return Column(name, UtcDateTime(), nullable=nullable)


def _text(name: str, *, nullable: bool = True) -> Column[str]:
    return Column(name, Text, nullable=nullable)


def _string(name: str, length: int, *, nullable: bool = False, **options: Any) -> Column[str]:
    return Column(name, String(length), nullable=nullable, **options)


def _count(name: str) -> Column[int]:
    return Column(name, Integer, nullable=False, default=0)


def _id() -> Column[int]:
    return Column("id", Integer, primary_key=True, autoincrement=True)


def _reference(
    name: str, target: str, *, nullable: bool = False, ondelete: str | None = None, **column: Any
) -> Column[int]:
    return Column(name, Integer, ForeignKey(target, ondelete=ondelete), nullable=nullable, **column)


# What we remember of a source between polls, and its health.
sources_t = Table(
    "source_state",
    metadata,
    _string("name", 100, primary_key=True),
    Column("cursor", JSON(), nullable=False, default=dict),
    _string("health", 20, default="new"),
    _count("failures"),
    _when("last_attempt", nullable=True),
    _when("last_success", nullable=True),
    _when("last_new_item", nullable=True),
    _when("fed_at", nullable=True),  # a poll's first entries: backfill applies until then
    Column("cadence", Float(), nullable=True),  # seconds, see monitor.cadence
    _when("not_before", nullable=True),  # a server's floor for the next poll
    _text("last_error"),
    _when("last_error_at", nullable=True),
    _when("next_poll", nullable=True),
    _text("url"),
    _string("lease_owner", 200, nullable=True),
    _when("lease_until", nullable=True),
)

# One story, however many outlets carried it.
stories_t = Table(
    "stories",
    metadata,
    _id(),
    _string("fingerprint", 64, unique=True),
    _when("first_seen"),
    Column("signature", JSON(), nullable=True),
)

# One LSH band hash of a story's MinHash signature (see monitor.stories): the index that
# finds near-duplicate candidates in a few lookups, across restarts.
bands_t = Table(
    "story_bands",
    metadata,
    Column("band", BigInteger, primary_key=True, autoincrement=False),
    _reference("story_id", "stories.id", ondelete="CASCADE", primary_key=True, autoincrement=False),
    # Its primary key is the table: a rowid would keep every band a second time (0006).
    sqlite_with_rowid=False,
)

# A later version of a story (an edited item's text), by its fingerprint and with its
# signature: a copy of the version finds the story as it finds its first (storyindex).
versions_t = Table(
    "story_versions",
    metadata,
    _string("fingerprint", 64, primary_key=True),
    _reference("story_id", "stories.id", ondelete="CASCADE", index=True),
    _when("seen"),
    Column("signature", JSON(), nullable=True),
)

items_t = Table(
    "items",
    metadata,
    _id(),
    _string("source", 100),
    _string("key", 600),
    _reference("story_id", "stories.id"),
    _text("url"),
    _text("title", nullable=False),
    _text("body", nullable=False),
    _text("html"),
    _text("author"),
    _when("published"),
    _when("fetched_at"),
    _when("updated_at", nullable=True),
    _string("content_hash", 64),
    _text("file"),  # a document's file, when its title is its identity (dedup.document_file)
    _string("body_hash", 64, nullable=True),  # dedup.body_hash; every row's since 0012
    _string("headline_hash", 64, nullable=True),  # dedup.headline_hash; every row's since 0013
    UniqueConstraint("source", "key"),
    # An entry found again under another name by its link and text (repo._same_text_rows).
    Index(None, "source", "content_hash"),
    # A source's items with a body (storyindex._a_template), not a read of all its items.
    Index(None, "source", "body_hash"),
    # The items under a notice's headline, whatever their source (storyindex._headline_rows).
    Index(None, "headline_hash"),
    Index(None, "published"),
    Index(None, "fetched_at"),
    Index(None, "story_id"),
)

# A story matched a watch-list. ``revision`` is empty unless the watch-list alerts on
# every update (``on_update: always``), where it is the content hash.
matches_t = Table(
    "matches",
    metadata,
    _id(),
    _reference("item_id", "items.id", ondelete="CASCADE"),
    _reference("story_id", "stories.id"),
    _string("watchlist", 100),
    _string("revision", 64, default=""),
    _when("matched_at"),
    Column("hits", JSON(), nullable=False),
    _count("silent"),
    UniqueConstraint("story_id", "watchlist", "revision"),
    Index(None, "matched_at"),
)

# The outbox: one row per message to send, keyed for idempotency.
deliveries_t = Table(
    "deliveries",
    metadata,
    _id(),
    _string("key", 300, unique=True),
    _string("kind", 20),
    _string("channel", 100),
    _string("recipient", 300, default=""),
    _string("watchlist", 100, nullable=True),
    _reference("match_id", "matches.id", nullable=True, ondelete="CASCADE"),
    Column("payload", JSON(), nullable=False, default=dict),
    # Recipients that took the mail when others refused it for now: its retry skips them.
    Column("delivered_to", JSON(), nullable=True),
    _string("status", 20, default="pending"),
    _count("attempts"),
    _when("created_at"),
    _when("due_at"),
    _when("sent_at", nullable=True),
    _text("last_error"),
    _string("claimed_by", 200, nullable=True),
    _when("claimed_until", nullable=True),
    Index(None, "status", "due_at"),
)

# Where each digest's last window ended: the next one starts there.
digests_t = Table(
    "digest_windows",
    metadata,
    _string("name", 100, primary_key=True),
    _when("window_end"),
    _when("last_sent", nullable=True),
    _string("lease_owner", 200, nullable=True),
    _when("lease_until", nullable=True),
)

# A match a digest has carried. Windows go by ``matched_at``, which a poll stamps when it
# starts: a poll that commits after a window closed past that time would have its
# matches fall between windows, so each window also looks back for matches no digest of
# that name has carried, and this ledger keeps any from coming twice.
digest_matches_t = Table(
    "digest_matches",
    metadata,
    _string("digest", 100, primary_key=True),
    _reference("match_id", "matches.id", ondelete="CASCADE", primary_key=True, autoincrement=False),
    Index(None, "match_id"),
)
