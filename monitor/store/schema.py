"""Database schema (SQLAlchemy 2.0 typed models). Migrations in migrations/ mirror it.

Dedup and claims are constraints, not read-then-write: items are unique per
(source, key), stories per fingerprint, matches per (story, watch-list, revision),
deliveries per idempotency key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


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

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UtcDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


class SourceStateRow(Base):
    """What we remember of a source between polls, and its health."""

    __tablename__ = "source_state"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    cursor: Mapped[dict[str, Any]] = mapped_column(default=dict)
    health: Mapped[str] = mapped_column(String(20), default="new")
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt: Mapped[datetime | None]
    last_success: Mapped[datetime | None]
    last_new_item: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None]
    next_poll: Mapped[datetime | None]
    url: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None]


class StoryRow(Base):
    """One story, however many outlets carried it."""

    __tablename__ = "stories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    first_seen: Mapped[datetime]
    signature: Mapped[list[Any] | None]


class StoryBandRow(Base):
    """One LSH band hash of a story's MinHash signature (see monitor.stories): the
    index that finds near-duplicate candidates in a few lookups, across restarts."""

    __tablename__ = "story_bands"

    band: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    story_id: Mapped[int] = mapped_column(
        ForeignKey("stories.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )


class ItemRow(Base):
    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("source", "key"),
        Index(None, "published"),
        Index(None, "fetched_at"),
        Index(None, "story_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(600))
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id"))
    url: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(Text)
    published: Mapped[datetime]
    fetched_at: Mapped[datetime]
    updated_at: Mapped[datetime | None]
    content_hash: Mapped[str] = mapped_column(String(64))


class MatchRow(Base):
    """A story matched a watch-list. ``revision`` is empty unless the watch-list
    alerts on every update (``on_update: always``), where it is the content hash."""

    __tablename__ = "matches"
    __table_args__ = (
        UniqueConstraint("story_id", "watchlist", "revision"),
        Index(None, "matched_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id"))
    watchlist: Mapped[str] = mapped_column(String(100))
    revision: Mapped[str] = mapped_column(String(64), default="")
    matched_at: Mapped[datetime]
    hits: Mapped[dict[str, Any]]
    silent: Mapped[int] = mapped_column(Integer, default=0)


class DeliveryRow(Base):
    """The outbox: one row per message to send, keyed for idempotency."""

    __tablename__ = "deliveries"
    __table_args__ = (Index(None, "status", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(100))
    recipient: Mapped[str] = mapped_column(String(300), default="")
    watchlist: Mapped[str | None] = mapped_column(String(100))
    match_id: Mapped[int | None] = mapped_column(ForeignKey("matches.id", ondelete="CASCADE"))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    due_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[datetime | None]


class DigestWindowRow(Base):
    """Where each digest's last window ended: the next one starts there."""

    __tablename__ = "digest_windows"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    window_end: Mapped[datetime]
    last_sent: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None]


class DigestMatchRow(Base):
    """A match a digest has carried. Windows go by ``matched_at``, which a poll stamps
    when it starts: a poll that commits after a window closed past that time would have
    its matches fall between windows, so each window also looks back for matches no
    digest of that name has carried, and this ledger keeps any from coming twice."""

    __tablename__ = "digest_matches"
    __table_args__ = (Index(None, "match_id"),)

    digest: Mapped[str] = mapped_column(String(100), primary_key=True)
    match_id: Mapped[int] = mapped_column(
        ForeignKey("matches.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
