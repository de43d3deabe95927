"""Queries: everything the pipeline, the delivery worker and the CLI ask of the database.

Writes that decide identity are single statements against unique constraints
(``INSERT ... ON CONFLICT DO NOTHING``); claims are single ``UPDATE``s guarded by a
lease, so racing workers or instances never take the same row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar, cast
from uuid import uuid4

import structlog
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Insert,
    Row,
    RowMapping,
    Select,
    String,
    Table,
    Update,
    and_,
    bindparam,
    create_engine,
    event,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from monitor import stories
from monitor.cadence import next_cadence
from monitor.cpu import CPU_WORK
from monitor.dedup import body_hash, file_story_key, headline_hash, story_key
from monitor.errors import StoreError
from monitor.model import Item, StoredItem
from monitor.store import migrate
from monitor.store.dialects import in_values, insert_for
from monitor.store.schema import (
    deliveries_t,
    digest_matches_t,
    digests_t,
    items_t,
    matches_t,
    sources_t,
    stories_t,
)
from monitor.store.storyindex import assign_stories, index_versions
from monitor.store.writelock import serialize_writers
from monitor.text import utc_now

log = structlog.get_logger("monitor.store")

ItemStatus = Literal["new", "updated", "unchanged"]

# A closed digest window stays leased this long past its end: the same schedule firing on
# another instance a few seconds later finds it taken instead of sending a second, almost
# empty digest. Shorter than cron's one minute, so the next firing is never refused.
DIGEST_LEASE = timedelta(seconds=30)
# Tries of an ingest transaction that PostgreSQL aborted as a deadlock (see Store.ingest).
INGEST_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class SourceState:
    name: str
    cursor: dict[str, Any]
    health: str = "new"
    failures: int = 0
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    last_new_item: datetime | None = None  # last news; a source with none: its first good poll
    fed_at: datetime | None = None  # when a poll first brought entries: it is new until then
    cadence: float | None = None  # usual seconds between polls that bring news
    last_error: str | None = None
    last_error_at: datetime | None = None
    next_poll: datetime | None = None
    not_before: datetime | None = None  # a server's floor (Retry-After, max-age)
    url: str | None = None
    items: int = 0


@dataclass(frozen=True, slots=True)
class Notice:
    """A message that belongs to no match (a source's health notice), queued with the
    source's state it tells of, in the same transaction."""

    key: str
    kind: str
    channel: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PlannedDelivery:
    """A delivery to enqueue with a match: the channel, and for whom."""

    channel: str
    kind: str = "instant"
    recipient: str = ""
    due_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PlannedMatch:
    """What the router decided for one watch-list hit on one item."""

    watchlist: str
    hits: dict[str, Any]
    revision: str = ""
    silent: bool = False
    deliveries: tuple[PlannedDelivery, ...] = ()


@dataclass(frozen=True, slots=True)
class IngestedItem:
    """An item that was new or changed in this poll, with its identities in the store."""

    item: Item
    status: ItemStatus
    item_id: int
    story_id: int


Router = Callable[[IngestedItem], Sequence[PlannedMatch]]


MatchKey = tuple[int, str, str]  # (story, watch-list, revision): one match, unique


@dataclass(slots=True)
class IngestResult:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    matches: int = 0
    deliveries: int = 0
    matched_watchlists: list[str] = field(default_factory=list)
    added_matches: list[MatchKey] = field(default_factory=list)  # a replay lists them


@dataclass(frozen=True, slots=True)
class DeliveryJob:
    """A claimed outbox row."""

    id: int
    key: str
    kind: str
    channel: str
    recipient: str
    watchlist: str | None
    match_id: int | None
    payload: dict[str, Any]
    attempts: int
    delivered_to: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ChannelSends:
    """Instant alerts a channel sent in a window: how many, and the oldest send time."""

    count: int
    oldest: datetime | None


@dataclass(frozen=True, slots=True)
class MatchRecord:
    id: int
    watchlist: str
    matched_at: datetime
    hits: dict[str, Any]
    item: StoredItem


# Connections kept open for reuse. The daemon has up to 15 threads at the database at
# once (10 pollers, 2 outbox workers, heartbeat, probe, the status server); with
# SQLAlchemy's default of 5, a pass over many feeds closed and reopened a connection (and
# ran its PRAGMAs, or a PostgreSQL login) for one poll in every seven.
POOL_SIZE = 16
CACHE_KIB = 1024  # SQLite's page cache per connection


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the CLI read while the daemon writes; NORMAL is durable at each
    # checkpoint in WAL mode and keeps commits cheap.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # A connection's page cache is dropped whenever another connection writes, which
    # the pollers do all the time, so SQLite's default of 2 MiB a connection mostly held
    # stale pages: a cold pass over 200 feeds peaked 4-6 MiB lower at 1 MiB, no slower.
    # The operating system caches the file for every connection anyway.
    cursor.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    cursor.close()


def _sqlite_file(url: str) -> Path | None:
    """The file of an SQLite URL; None for a server or an in-memory database."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        return Path(url.removeprefix("sqlite:///"))
    return None


def database_exists(url: str) -> bool:
    """False for an SQLite file not made yet (opening it would make it); a server's
    database is taken to be there."""
    file = _sqlite_file(url)
    return file is None or file.exists()


def open_store(url: str, *, upgrade: bool = True) -> Store:
    """Connect, and bring the schema up to date unless told not to."""
    file = _sqlite_file(url)
    if file is not None:
        folder = file.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file where a folder should be, no permission
            raise StoreError(f"cannot make the database's folder {folder}: {exc.strerror}") from exc
    try:
        # A server's connections can die idle; an SQLite file's cannot, and pinging it
        # cost a query at every checkout, several per poll.
        engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"), pool_size=POOL_SIZE)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StoreError(f"cannot open database {redact_url(url)}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _on_sqlite_connect)
        serialize_writers(engine)
    store = Store(engine)
    if upgrade:
        store.upgrade()
    return store


def redact_url(url: str) -> str:
    """A database URL without its password, for messages and logs."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("://", 1)[0] + "://…"


# Retention never forgets a source's newest items, whatever their age: a feed keeps
# serving its newest entries (a dormant feed for ever), and a forgotten one would come
# back as new and alert again. Feeds serving more entries than this at once are rare.
KEEP_NEWEST_PER_SOURCE = 500
# VACUUM rewrites the whole file and blocks writers meanwhile; SQLite reuses free pages
# anyway, so it is worth it only when much of the file is free (after a large prune).
VACUUM_FREE_SHARE = 0.25
_PRUNE_CHUNK = 500


class Store:
    """All database access. Methods are short transactions of their own."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = insert_for(engine.dialect.name)
        self._statements = _statements(engine.dialect.name)
        local = engine.dialect.name == "sqlite"
        self._cpu_work: AbstractContextManager[Any] = CPU_WORK if local else nullcontext()

    # --- lifecycle ----------------------------------------------------------------------

    def upgrade(self) -> None:
        try:
            migrate.upgrade(self.engine)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot migrate the database: {exc}") from exc

    def schema(self) -> Literal["none", "older", "current"]:
        """Where the database's schema stands against this code's: none yet (a server's
        database, there before the first start), older (not migrated yet), or current."""
        try:
            revision = migrate.current_revision(self.engine)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read the database: {exc}") from exc
        if revision is None:
            return "none"
        return (
            "current" if revision == (migrate.known_head() or migrate.head_revision()) else "older"
        )

    def ping(self) -> bool:
        """Whether the database answers."""
        try:
            with self.engine.connect() as connection:
                connection.execute(select(1))
        except SQLAlchemyError:
            return False
        return True

    def close(self) -> None:
        self.engine.dispose()

    def optimize(self) -> bool:
        """Routine upkeep of SQLite (PostgreSQL's autovacuum does its own): refresh the
        planner's statistics, VACUUM when much of the file is free pages, and fold the
        write-ahead log back into the database. Returns whether it vacuumed."""
        if self.engine.dialect.name != "sqlite":
            return False
        with self.engine.connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.exec_driver_sql("PRAGMA optimize")
            free = int(connection.exec_driver_sql("PRAGMA freelist_count").scalar_one())
            pages = int(connection.exec_driver_sql("PRAGMA page_count").scalar_one())
            vacuum = pages > 0 and free / pages > VACUUM_FREE_SHARE
            if vacuum:
                connection.exec_driver_sql("VACUUM")
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return vacuum

    def prune(self, before: datetime) -> dict[str, int]:
        """Forget what retention allows, in one transaction; returns rows deleted per table.

        Sent and dead deliveries created before ``before`` go. Stories go as a whole, with
        their items and matches, when every item was fetched and last changed before
        ``before`` (an old entry its feed edited lately is still served), none is
        among its source's ``KEEP_NEWEST_PER_SOURCE`` newest (see there), and no delivery
        of theirs is pending (a digest's names its matches in its payload). A whole story,
        because its matches are what stops a later copy or update from alerting again; a
        newest item, because it is what stops the same entry, still served, from coming
        back as new.
        """
        ranked = select(
            items_t.c.story_id,
            items_t.c.fetched_at,
            items_t.c.updated_at,
            func.row_number()
            .over(partition_by=items_t.c.source, order_by=items_t.c.id.desc())
            .label("rank"),
        ).subquery()
        kept = (
            select(ranked.c.story_id)
            .where(
                or_(
                    ranked.c["rank"] <= KEEP_NEWEST_PER_SOURCE,
                    ranked.c.fetched_at >= before,
                    ranked.c.updated_at >= before,
                )
            )
            .union(
                select(matches_t.c.story_id)
                .join(deliveries_t, deliveries_t.c.match_id == matches_t.c.id)
                .where(deliveries_t.c.status == "pending")
            )
        )
        doomed = select(stories_t.c.id).where(
            stories_t.c.first_seen < before, stories_t.c.id.not_in(kept)
        )
        counts = dict.fromkeys(("deliveries", "matches", "items", "stories"), 0)
        with self.engine.begin() as connection:
            counts["deliveries"] += connection.execute(
                deliveries_t.delete().where(
                    deliveries_t.c.status.in_(["sent", "dead"]), deliveries_t.c.created_at < before
                )
            ).rowcount
            carried = _pending_digest_stories(connection)
            story_ids = [i for i in connection.execute(doomed).scalars() if i not in carried]
            for start in range(0, len(story_ids), _PRUNE_CHUNK):
                chunk = story_ids[start : start + _PRUNE_CHUNK]
                matches = select(matches_t.c.id).where(matches_t.c.story_id.in_(chunk))
                counts["deliveries"] += connection.execute(
                    deliveries_t.delete().where(deliveries_t.c.match_id.in_(matches))
                ).rowcount
                counts["matches"] += connection.execute(
                    matches_t.delete().where(matches_t.c.story_id.in_(chunk))
                ).rowcount
                counts["items"] += connection.execute(
                    items_t.delete().where(items_t.c.story_id.in_(chunk))
                ).rowcount
                counts["stories"] += connection.execute(
                    stories_t.delete().where(stories_t.c.id.in_(chunk))
                ).rowcount
        return counts

    # --- sources ------------------------------------------------------------------------

    def source_state(self, name: str) -> SourceState:
        with self.engine.connect() as connection:
            row = connection.execute(select(sources_t).where(sources_t.c.name == name)).first()
        if row is None:
            return SourceState(name=name, cursor={})
        return _source_state(row._mapping)

    def source_states(self, *, item_counts: bool = True) -> list[SourceState]:
        """Every source's state; ``items`` counted only if ``item_counts`` (a scan of
        the items: for `monitor status`, not for planning polls)."""
        query = select(sources_t)
        if item_counts:
            counts = (
                select(items_t.c.source, func.count().label("items"))
                .group_by(items_t.c.source)
                .subquery()
            )
            query = select(sources_t, counts.c["items"]).outerjoin(
                counts, counts.c.source == sources_t.c.name
            )
        with self.engine.connect() as connection:
            return [_source_state(row._mapping) for row in connection.execute(query)]

    def waiting_source_states(
        self, *, now: datetime, backing_off: Collection[str]
    ) -> list[SourceState]:
        """The states of the sources not due at ``now`` that are backing off (their
        health one of ``backing_off``) or were asked by their server to wait past ``now``:
        those that monitor.health.held_until may hold, read without the others' rows."""
        query = select(sources_t).where(
            sources_t.c.next_poll > now,
            or_(sources_t.c.health.in_(list(backing_off)), sources_t.c.not_before > now),
        )
        with self.engine.connect() as connection:
            return [_source_state(row._mapping) for row in connection.execute(query)]

    def save_source_state(
        self,
        state: SourceState,
        *,
        owner: str | None = None,
        notices: Sequence[Notice] = (),
        now: datetime | None = None,
    ) -> None:
        """Write a source's cursor and health (one upsert), ending ``owner``'s lease, and
        queue ``notices`` (due ``now``) in the same transaction, only if the state was
        written: a poll that outlived its lease tells of no change, the next poll does."""
        if not notices:
            self.save_source_states([state], owner=owner)
            return
        with self.engine.begin() as connection:
            if self._upsert_sources(connection, [state], owner):  # else: lease lost
                self._enqueue_notices(connection, notices, now or utc_now())
            else:
                log.info("source_notices_dropped", source=state.name, lease_lost_by=owner)

    def save_source_states(
        self, states: Sequence[SourceState], *, owner: str | None = None
    ) -> None:
        """``save_source_state`` for several sources, in one transaction and one
        statement run for each (by name, the order ``claim_sources`` locks them in)."""
        if states:
            with self.engine.begin() as connection:
                self._upsert_sources(connection, sorted(states, key=lambda s: s.name), owner)

    def _upsert_sources(
        self, connection: Connection, states: Sequence[SourceState], owner: str | None
    ) -> set[str]:
        """Write sources' states, which ends their polls' leases. With ``owner``, only
        while ``owner`` holds the lease: a poll that outlived its lease and was taken over
        must not overwrite the newer poll's cursor. The names of the states written."""
        anyone, only_owner = _upsert_source_statements(self.engine.dialect.name)
        ended = {"lease_owner": None, "lease_until": None}
        if owner is None:
            written = connection.execute(anyone, [{**_state_values(s), **ended} for s in states])
        else:
            lessee = {**ended, "b_owner": owner}
            written = connection.execute(
                only_owner, [{**_state_values(s), **lessee} for s in states]
            )
        return set(written.scalars())

    def claim_source(
        self, name: str, owner: str, *, now: datetime, until: datetime, force: bool = False
    ) -> SourceState | None:
        """Lease source ``name`` to ``owner`` until ``until`` for one poll; its state, or
        None when another instance holds it or (unless ``force``) it is not due yet.

        Writing the state after the poll (``ingest`` or ``save_source_state`` with the same
        owner) ends the lease; a poller that dies leaves it to run out.
        """
        return self.claim_sources({name: until}, owner, now=now, force=force).get(name)

    def claim_sources(
        self, until: Mapping[str, datetime], owner: str, *, now: datetime, force: bool = False
    ) -> dict[str, SourceState]:
        """``claim_source`` for each source named in ``until`` (each leased until its
        own time), in one transaction: the states of those leased to ``owner``.

        Rows are locked in name order, so instances claiming overlapping sets cannot
        deadlock.
        """
        when: LeaseWhen = "free" if force else "due"
        with self.engine.begin() as connection:
            if self.engine.dialect.name == "sqlite":  # one writer: no lock order to keep
                rows = self._lease_sources(connection, until, owner, now=now, when=when)
            else:
                rows = [
                    self._lease(
                        connection,
                        sources_t,
                        _state_values(SourceState(name, {})),
                        owner,
                        now=now,
                        until=until[name],
                        when=when,
                    )
                    for name in sorted(until)
                ]
        return {row["name"]: _source_state(row) for row in rows if row is not None}

    def _lease_sources(
        self,
        connection: Connection,
        until: Mapping[str, datetime],
        owner: str,
        *,
        now: datetime,
        when: LeaseWhen,
    ) -> list[RowMapping | None]:
        """What ``_lease`` does for each source of ``until``, with one UPDATE for each
        lease end (a pass's sources mostly share one), not one for each source; then the
        rows it did not take are inserted where missing. For SQLite only: its writer holds
        the database from the first UPDATE on, so no row changes in between."""
        create = _lease_statements(self.engine.dialect.name, sources_t.name, when)[1]
        ends: dict[datetime, list[str]] = {}
        for name, end in until.items():
            ends.setdefault(end, []).append(name)
        rows: list[RowMapping | None] = []
        for end, names in ends.items():
            found = connection.execute(
                _lease_many_statement(when),
                {"b_names": names, "b_now": now, "b_owner": owner, "b_until": end},
            )
            rows.extend(row._mapping for row in found)
        taken = {row["name"] for row in rows if row is not None}
        for name in sorted(set(until) - taken):
            values = {
                **_state_values(SourceState(name, {})),
                "lease_owner": owner,
                "lease_until": until[name],
            }
            rows.append(_first_mapping(connection.execute(create, values).first()))
        return rows

    def _lease(
        self,
        connection: Connection,
        table: Table,
        new_row: dict[str, Any],
        owner: str,
        *,
        now: datetime,
        until: datetime,
        when: LeaseWhen,
    ) -> RowMapping | None:
        """Lease the row named ``new_row["name"]`` of ``table`` (which has lease columns)
        to ``owner``: an existing row only if its lease is free or ran out and ``when``
        holds (see ``_lease_statements``); a missing one is inserted as ``new_row``, leased.

        Of racing claimers exactly one wins: PostgreSQL re-checks the UPDATE's WHERE on
        the row a racing claim just committed, the INSERT meets the primary key, and SQLite
        has one writer at a time.
        """
        take, create = _lease_statements(self.engine.dialect.name, table.name, when)
        lease = {"lease_owner": owner, "lease_until": until}
        row = connection.execute(
            take, {"b_name": new_row["name"], "b_now": now, "b_owner": owner, "b_until": until}
        ).first()
        if row is None:
            row = connection.execute(create, {**new_row, **lease}).first()
        return None if row is None else row._mapping

    # --- ingest -------------------------------------------------------------------------

    def ingest(
        self,
        items: Sequence[Item],
        state: SourceState,
        route: Router,
        *,
        now: datetime,
        owner: str | None = None,
        notices: Callable[[IngestResult], Sequence[Notice]] | None = None,
    ) -> IngestResult:
        """Store new and changed items, their matches and deliveries, the source's new
        state (ending ``owner``'s lease) and the ``notices`` its outcome calls for, in ONE
        transaction: a crash leaves all of it or none of it.

        Items are stored in fingerprint order, so polls carrying the same stories (copies
        in several outlets, polled by several instances) lock them in one order. A
        transaction PostgreSQL still aborts as a deadlock (a copy joining an existing story
        by similarity) runs again from the start: ``route`` only computes.

        On SQLite the whole ingest is CPU work (a local file; the only wait, for the
        process's write lock, is short), so it holds ``CPU_WORK`` (see monitor.cpu): one
        poller at a time. On PostgreSQL it waits for the server, and pollers overlap.
        """
        # A feed that did not change writes the source's state alone: no CPU work to speak of.
        with self._cpu_work if items else nullcontext():
            for _ in range(INGEST_ATTEMPTS - 1):
                try:
                    return self._ingest_once(items, state, route, now, owner, notices)
                except DBAPIError as exc:
                    if getattr(exc.orig, "sqlstate", None) not in ("40P01", "40001"):
                        raise
            return self._ingest_once(items, state, route, now, owner, notices)

    def _ingest_once(
        self,
        items: Sequence[Item],
        state: SourceState,
        route: Router,
        now: datetime,
        owner: str | None,
        notices: Callable[[IngestResult], Sequence[Notice]] | None,
    ) -> IngestResult:
        result = IngestResult()
        ordered = [(item, _item_values(item, now)) for item in sorted(items, key=_by_fingerprint)]
        with self.engine.begin() as connection:
            for batch in _rounds(ordered, _stored_texts(connection, ordered)):
                planned: list[tuple[IngestedItem, PlannedMatch]] = []
                for ingested in self._store_items(connection, batch, now):
                    if ingested.status == "unchanged":
                        result.unchanged += 1
                        continue
                    if ingested.status == "new":
                        result.new += 1
                    else:
                        result.updated += 1
                    planned.extend((ingested, plan) for plan in route(ingested))
                self._add_matches(connection, planned, now, result)
            if result.new:
                cadence = next_cadence(state.cadence, state.last_new_item, now)
                state = replace(state, last_new_item=now, cadence=cadence)
            written = self._upsert_sources(connection, [state], owner)
            if notices is not None and written:  # see save_source_state
                self._enqueue_notices(connection, notices(result), now)
        return result

    def _store_items(
        self, connection: Connection, batch: list[tuple[Item, dict[str, Any]]], now: datetime
    ) -> list[IngestedItem]:
        """Store one round of a poll's items (no key twice): one query for the rows
        already there (and one for those with their texts, when an item with a link is
        new or changed), one UPDATE per changed item, then the stories and rows of the new
        ones, each a multi-row statement. Their outcomes, in order."""
        batch, founds = _stored_rows(connection, batch)
        founds = _same_text_rows(connection, batch, founds)
        outcomes: list[IngestedItem | None] = []
        updates: list[dict[str, Any]] = []
        fresh: list[tuple[int, Item, dict[str, Any]]] = []
        edited: list[tuple[IngestedItem, Any]] = []
        moves: list[dict[str, Any]] = []
        for (item, values), found in zip(batch, founds, strict=True):
            if found is None:
                fresh.append((len(outcomes), item, values))
                outcomes.append(None)
            elif found.content_hash == item.content_hash:
                outcomes.append(IngestedItem(item, "unchanged", found.id, found.story_id))
                moves.extend(_move(found, item, values))
            else:
                # An item found by another key keeps it: it is its identity out there.
                changed = {k: v for k, v in values.items() if k not in ("fetched_at", "key")}
                updates.append({**changed, "updated_at": now, "item_id": found.id})
                edited.append((IngestedItem(item, "updated", found.id, found.story_id), found))
                outcomes.append(edited[-1][0])
        if moves:
            connection.execute(_MOVE_ITEM, moves)
            connection.execute(_REKEY_ITEM, moves)
        if updates:
            index_versions(connection, _story_versions(connection, edited), now)
            connection.execute(_UPDATE_ITEM, updates)
        if fresh:
            story_ids = assign_stories(connection, [item for _, item, _ in fresh], now)
            new_rows = [
                {**values, "story_id": story_id}
                for (_, _, values), story_id in zip(fresh, story_ids, strict=True)
            ]
            inserted = {
                (source, key): int(item_id)
                for item_id, source, key in connection.execute(
                    self._statements.insert_items, new_rows
                )
            }
            for (at, item, values), story_id in zip(fresh, story_ids, strict=True):
                item_id = inserted.get((item.source, values["key"]))
                if item_id is None:  # another instance stored it between our read and insert
                    outcomes[at] = IngestedItem(item, "unchanged", 0, story_id)
                else:
                    outcomes[at] = IngestedItem(item, "new", item_id, story_id)
        return [outcome for outcome in outcomes if outcome is not None]

    def _add_matches(
        self,
        connection: Connection,
        planned: list[tuple[IngestedItem, PlannedMatch]],
        now: datetime,
        result: IngestResult,
    ) -> None:
        """Insert the matches (one per story, watch-list and revision: the first planned
        that alerts wins, else the first, as a copy of the story outside a new source's
        backfill must not silence the one inside it; the unique key drops the rest and
        what an earlier poll matched) and the deliveries of those that are new, counting
        both into ``result``."""
        chosen: dict[MatchKey, tuple[IngestedItem, PlannedMatch]] = {}
        for ingested, plan in planned:
            unique = (ingested.story_id, plan.watchlist, plan.revision)
            held = chosen.get(unique)
            if held is None or (held[1].silent and not plan.silent):
                chosen[unique] = (ingested, plan)
        if not chosen:
            return
        rows = [
            {
                "item_id": ingested.item_id,
                "story_id": ingested.story_id,
                "watchlist": plan.watchlist,
                "revision": plan.revision,
                "matched_at": now,
                "hits": plan.hits,
                "silent": int(plan.silent),
            }
            for ingested, plan in chosen.values()
        ]
        added = {
            (row.story_id, row.watchlist, row.revision): int(row.id)
            for row in connection.execute(self._statements.insert_matches, rows)
        }
        deliveries: dict[str, dict[str, Any]] = {}
        for unique, (ingested, plan) in chosen.items():
            match_id = added.get(unique)
            if match_id is None:
                continue
            result.matches += 1
            result.matched_watchlists.append(plan.watchlist)
            result.added_matches.append(unique)
            for delivery in plan.deliveries:
                key = delivery_key(
                    ingested.story_id,
                    plan.watchlist,
                    plan.revision,
                    delivery.channel,
                    delivery.recipient,
                )
                deliveries.setdefault(
                    key,
                    _delivery_values(
                        key=key,
                        kind=delivery.kind,
                        channel=delivery.channel,
                        recipient=delivery.recipient,
                        watchlist=plan.watchlist,
                        match_id=match_id,
                        payload={},
                        now=now,
                        due_at=delivery.due_at or now,
                    ),
                )
        if deliveries:
            queued = connection.execute(
                self._statements.insert_deliveries, list(deliveries.values())
            )
            result.deliveries += len(queued.all())

    def add_matches(
        self, planned: Sequence[tuple[IngestedItem, PlannedMatch]], *, now: datetime
    ) -> IngestResult:
        """Matches (and their deliveries) for items stored earlier, e.g. a replay against
        a new watch-list; what already matched is dropped by the same unique keys."""
        result = IngestResult()
        with self.engine.begin() as connection:
            self._add_matches(connection, list(planned), now, result)
        return result

    def unmatched(self, keys: Collection[MatchKey]) -> set[MatchKey]:
        """Which ``(story, watch-list, revision)`` have no match yet: those
        ``add_matches`` would add (a replay's dry run counts them, changing nothing)."""
        stories = sorted({story for story, _, _ in keys})
        known: set[MatchKey] = set()
        columns = (matches_t.c.story_id, matches_t.c.watchlist, matches_t.c.revision)
        with self.engine.connect() as connection:
            for chunk in _chunks(stories):
                query = select(*columns).where(matches_t.c.story_id.in_(chunk))
                known.update((int(s), w, r) for s, w, r in connection.execute(query))
        return set(keys) - known

    def _enqueue_notices(
        self, connection: Connection, notices: Sequence[Notice], now: datetime
    ) -> int:
        """Queue messages that belong to no match (sources' health notices); how many
        were new (a key queued before is not queued again)."""
        return sum(
            self._enqueue(
                connection,
                key=notice.key,
                kind=notice.kind,
                channel=notice.channel,
                recipient="",
                watchlist=None,
                match_id=None,
                payload=notice.payload,
                now=now,
                due_at=now,
            )
            for notice in notices
        )

    def _enqueue(self, connection: Connection, **fields: Any) -> int:
        """Insert one delivery (see ``_delivery_values`` for the fields); 1 if new, 0 if
        its key was already queued."""
        values = _delivery_values(**fields)
        inserted = connection.execute(self._statements.insert_deliveries, values).first()
        return 0 if inserted is None else 1

    # --- deliveries ---------------------------------------------------------------------

    def claim_deliveries(
        self, owner: str, *, now: datetime, lease: timedelta, limit: int
    ) -> list[DeliveryJob]:
        """Take up to ``limit`` due deliveries for ``owner`` until ``now + lease``, the
        fewest attempts first, then in the order they were queued.

        A channel that fails as a whole puts its other deliveries off until the failed one's
        retry (``outbox.deliver_due``); the next batch then tries one of those first. Taken
        oldest first, a payload the receiver always fails on would be tried first every
        time, each failure putting the channel's other alerts off again until it was buried
        (30 attempts, a day); and in a long outage it alone would use up its attempts.
        """
        claimable = and_(
            deliveries_t.c.status == "pending",
            deliveries_t.c.due_at <= now,
            or_(deliveries_t.c.claimed_until.is_(None), deliveries_t.c.claimed_until < now),
        )
        # A materialized CTE runs the locking SELECT exactly once; as an IN (subquery) the
        # planner may run it again per row, and SKIP LOCKED then finds other rows each
        # time. SQLite leaves out FOR UPDATE: it has one writer at a time anyway.
        candidates = (
            select(deliveries_t.c.id)
            .where(claimable)
            .order_by(deliveries_t.c.due_at, deliveries_t.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .cte("candidates")
            .prefix_with("MATERIALIZED")
        )
        statement = (
            update(deliveries_t)
            .where(deliveries_t.c.id == candidates.c.id)
            .values(claimed_by=owner, claimed_until=now + lease)
            .returning(*deliveries_t.c)
        )
        with self.engine.begin() as connection:
            rows = connection.execute(statement).all()
        jobs = [
            DeliveryJob(
                id=row.id,
                key=row.key,
                kind=row.kind,
                channel=row.channel,
                recipient=row.recipient,
                watchlist=row.watchlist,
                match_id=row.match_id,
                payload=row.payload or {},
                attempts=row.attempts,
                delivered_to=frozenset(row.delivered_to or ()),
            )
            for row in rows
        ]
        return sorted(jobs, key=lambda job: (job.attempts, job.id))

    def renew_claim(self, job: DeliveryJob, owner: str, *, until: datetime) -> bool:
        """Extend ``owner``'s claim on ``job`` to ``until``; False when the lease ran out
        and another worker took the job over, which ``owner`` must then leave alone."""
        return job.id in self.renew_claims([job], owner, until=until)

    def renew_claims(self, jobs: Sequence[DeliveryJob], owner: str, *, until: datetime) -> set[int]:
        """``renew_claim`` for several jobs in one statement: the ids ``owner`` still
        holds, now until ``until``."""
        held: set[int] = set()
        with self.engine.begin() as connection:
            for chunk in _chunks([job.id for job in jobs]):
                renewed = connection.execute(
                    _RENEW_CLAIMS, {"ids": chunk, "b_owner": owner, "b_until": until}
                )
                held.update(int(job_id) for job_id in renewed.scalars())
        return held

    def release_claims(self, jobs: Sequence[DeliveryJob], owner: str) -> None:
        """Give back ``owner``'s claims on ``jobs``, left untried: due again at once, for
        any worker, not when the lease ends."""
        with self.engine.begin() as connection:
            for chunk in _chunks([job.id for job in jobs]):
                connection.execute(_RELEASE_CLAIMS, {"ids": chunk, "b_owner": owner})

    def mark_sent(self, job: DeliveryJob, owner: str, *, now: datetime) -> None:
        self.mark_sent_many([job], owner, now=now)

    def mark_sent_many(self, jobs: Sequence[DeliveryJob], owner: str, *, now: datetime) -> None:
        """Record that the channel accepted each of ``jobs``, in one statement; a job only
        while ``owner`` still holds it, as ``mark_sent``."""
        with self.engine.begin() as connection:
            for chunk in _chunks([job.id for job in jobs]):
                connection.execute(_MARK_SENT, {"ids": chunk, "b_owner": owner, "b_sent_at": now})

    def mark_retry(
        self,
        job: DeliveryJob,
        owner: str,
        *,
        error: str,
        due_at: datetime,
        delivered_to: frozenset[str] = frozenset(),
    ) -> None:
        """Put the delivery back for ``due_at``; ``delivered_to``: the recipients that have
        it now, kept for the retry (with those of earlier attempts)."""
        taken = {"delivered_to": sorted(job.delivered_to | delivered_to)} if delivered_to else {}
        self._finish(
            job,
            owner,
            status="pending",
            due_at=due_at,
            last_error=error,
            attempts=job.attempts + 1,
            **taken,
        )

    def mark_dead(self, job: DeliveryJob, owner: str, *, error: str) -> None:
        self._finish(job, owner, status="dead", last_error=error, attempts=job.attempts + 1)

    def reschedule(self, job: DeliveryJob, owner: str, *, due_at: datetime, kind: str) -> None:
        """Hold a delivery without counting an attempt (quiet hours, rate caps)."""
        self._finish(job, owner, status="pending", due_at=due_at, kind=kind)

    def channel_sends(self, channel: str, *, since: datetime) -> ChannelSends:
        """Instant alerts (not digests) ``channel`` sent after ``since``, for rate caps."""
        query = select(func.count(), func.min(deliveries_t.c.sent_at)).where(
            deliveries_t.c.channel == channel,
            deliveries_t.c.status == "sent",
            deliveries_t.c.kind != "digest",
            deliveries_t.c.sent_at > since,
        )
        with self.engine.connect() as connection:
            count, oldest = connection.execute(query).one()
        return ChannelSends(int(count), oldest)

    def _finish(self, job: DeliveryJob, owner: str, **values: Any) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(deliveries_t)
                .where(deliveries_t.c.id == job.id, deliveries_t.c.claimed_by == owner)
                .values(claimed_by=None, claimed_until=None, **values)
            )

    def requeue(self, *, dead: bool, now: datetime) -> int:
        """Make failed (or dead, with ``dead``) deliveries due now; returns how many."""
        statuses = ["dead"] if dead else ["pending"]
        with self.engine.begin() as connection:
            result = connection.execute(
                update(deliveries_t)
                .where(deliveries_t.c.status.in_(statuses), deliveries_t.c.attempts > 0)
                .values(status="pending", due_at=now, claimed_by=None, claimed_until=None)
            )
        return int(result.rowcount)

    def outbox_counts(self, *, now: datetime) -> dict[str, int]:
        query = select(deliveries_t.c.status, func.count()).group_by(deliveries_t.c.status)
        due = select(func.count()).where(
            deliveries_t.c.status == "pending", deliveries_t.c.due_at <= now
        )
        with self.engine.connect() as connection:
            counts = {status: int(n) for status, n in connection.execute(query)}
            counts["due"] = int(connection.execute(due).scalar_one())
        return {
            "pending": counts.get("pending", 0),
            "due": counts["due"],
            "sent": counts.get("sent", 0),
            "dead": counts.get("dead", 0),
        }

    def dead_letters(self, limit: int = 20) -> list[dict[str, Any]]:
        query = (
            select(
                deliveries_t.c.key,
                deliveries_t.c.channel,
                deliveries_t.c.last_error,
                deliveries_t.c.attempts,
            )
            .where(deliveries_t.c.status == "dead")
            .order_by(deliveries_t.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    # --- reading items and matches ------------------------------------------------------

    def match_record(self, match_id: int) -> MatchRecord | None:
        return self.match_records([match_id]).get(match_id)

    def match_records(self, match_ids: Sequence[int]) -> dict[int, MatchRecord]:
        """The matches with these ids that still exist, with their items, by id."""
        found: dict[int, MatchRecord] = {}
        with self.engine.connect() as connection:
            for chunk in _chunks(sorted(set(match_ids))):
                for row in connection.execute(_MATCH_RECORDS, {"ids": chunk}):
                    record = _match_record(row)
                    found[record.id] = record
        return found

    def matches_between(
        self,
        start: datetime,
        end: datetime,
        watchlists: Sequence[str] | None,
        *,
        not_in_digest: str | None = None,
    ) -> list[MatchRecord]:
        """Matches with ``start < matched_at <= end``, newest story first; with
        ``not_in_digest``, only those that digest has not carried yet."""
        query = (
            select(*_RECORD_COLUMNS)
            .join(items_t, items_t.c.id == matches_t.c.item_id)
            .where(
                matches_t.c.matched_at > start,
                matches_t.c.matched_at <= end,
                matches_t.c.silent == 0,
            )
            .order_by(items_t.c.published.desc(), matches_t.c.id.desc())
        )
        if watchlists:
            query = query.where(matches_t.c.watchlist.in_(list(watchlists)))
        if not_in_digest is not None:
            carried = select(digest_matches_t.c.match_id).where(
                digest_matches_t.c.digest == not_in_digest
            )
            query = query.where(matches_t.c.id.not_in(carried))
        with self.engine.connect() as connection:
            return [_match_record(row) for row in connection.execute(query)]

    def other_outlets(self, story_id: int, except_item: int) -> list[str]:
        """The other sources that carried a story, for "also reported by"."""
        return self.other_outlets_many([(story_id, except_item)])[(story_id, except_item)]

    def other_outlets_many(
        self, stories: Sequence[tuple[int, int]]
    ) -> dict[tuple[int, int], list[str]]:
        """``other_outlets`` for several (story, except item) pairs in one query."""
        carried: dict[int, list[tuple[int, str]]] = {}
        with self.engine.connect() as connection:
            for chunk in _chunks(sorted({story for story, _ in stories})):
                for story, item, source in connection.execute(_STORY_SOURCES, {"ids": chunk}):
                    carried.setdefault(int(story), []).append((int(item), str(source)))
        return {
            (story, except_item): _other_sources(carried.get(story, []), except_item)
            for story, except_item in stories
        }

    def items(
        self, *, source: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> Iterator[StoredItem]:
        """Stored items, newest fetched first."""
        query = select(items_t).order_by(items_t.c.fetched_at.desc(), items_t.c.id.desc())
        if source:
            query = query.where(items_t.c.source == source)
        if since:
            query = query.where(items_t.c.fetched_at >= since)
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            for row in connection.execution_options(yield_per=500).execute(query):
                yield _stored_item(row._mapping)

    # --- digests ------------------------------------------------------------------------

    def digest_windows(self) -> dict[str, tuple[datetime, datetime | None]]:
        with self.engine.connect() as connection:
            return {
                row.name: (row.window_end, row.last_sent)
                for row in connection.execute(select(digests_t))
            }

    def close_digest_window(
        self,
        name: str,
        *,
        start_default: datetime,
        end: datetime,
        build: Callable[[datetime, datetime], tuple[list[tuple[str, str]], dict[str, Any]] | None],
        overflow_channels: Sequence[str] = (),
        sharing: Mapping[str, Sequence[str]] | None = None,
    ) -> int | None:
        """Move a digest's window to ``end`` and enqueue its deliveries in one transaction;
        the deliveries queued, or None if the window was not this call's to close.

        ``build(start, end)`` returns ``([(channel, recipient)], payload)`` or None for
        nothing to send. The window moves either way, so no match is sent twice, and
        because the delivery rows commit with it, none is dropped.

        Overflow (instant alerts a rate cap held for a digest, kind ``overflow``) waiting
        on ``overflow_channels`` is taken in the same transaction: each such channel's
        delivery lists those match ids under ``"overflow"`` (less any carried in an earlier
        window by this digest or, ``sharing``, by the other digests sending to that
        channel), and is enqueued even when ``build`` had nothing to send.

        When anything is enqueued, the match ids under ``payload["matches"]`` are recorded
        as carried by this digest (``DigestMatchRow``), in the same transaction, so that
        ``matches_between(..., not_in_digest=name)`` never offers them again.

        Instances firing the same schedule race for the window's lease (see
        ``DIGEST_LEASE``): one closes it, the others return None, as does a call within
        the lease after a close. If the closer dies, the window stays where it was and
        the next firing after the lease takes it.
        """
        token = uuid4().hex  # fences this call; the window is not bound to an instance
        with self.engine.begin() as connection:
            row = self._lease(
                connection,
                digests_t,
                {"name": name, "window_end": start_default},
                token,
                now=end,
                until=end + DIGEST_LEASE,
                when="before_window_end",
            )
        if row is None or end <= row["window_end"]:
            return None
        start: datetime = row["window_end"]
        with self.engine.begin() as connection:
            moved = connection.execute(
                update(digests_t)
                .where(digests_t.c.name == name, digests_t.c.lease_owner == token)
                .values(window_end=end, last_sent=end, lease_owner=None)
            )
            if moved.rowcount == 0:  # our lease ran out and another instance took over
                return None
            overflow = _not_carried(
                connection,
                {
                    channel: {name, *(sharing or {}).get(channel, ())}
                    for channel in overflow_channels
                },
                self._take_overflow(connection, overflow_channels, now=end),
            )
            targets, payload = build(start, end) or ([], {})
            named = {channel for channel, _ in targets}
            targets += [(channel, "") for channel in overflow if channel not in named]
            count = 0
            for channel, recipient in targets:
                extra = {"overflow": overflow[channel]} if channel in overflow else {}
                count += self._enqueue(
                    connection,
                    key=f"digest:{name}:{end.isoformat()}:{channel}:{recipient}",
                    kind="digest",
                    channel=channel,
                    recipient=recipient,
                    watchlist=None,
                    match_id=None,
                    payload={
                        **payload,
                        **extra,
                        "digest": name,
                        "start": start.isoformat(),
                        "end": end.isoformat(),
                    },
                    now=end,
                    due_at=end,
                )
            carried = [{"digest": name, "match_id": int(i)} for i in payload.get("matches", [])]
            if targets and carried:
                connection.execute(self._insert(digest_matches_t).on_conflict_do_nothing(), carried)
        return count

    def _take_overflow(
        self, connection: Connection, channels: Sequence[str], *, now: datetime
    ) -> dict[str, list[int]]:
        """Mark unclaimed overflow on ``channels`` rolled into a digest; their match ids."""
        if not channels:
            return {}
        rows = connection.execute(
            update(deliveries_t)
            .where(
                deliveries_t.c.status == "pending",
                deliveries_t.c.kind == "overflow",
                deliveries_t.c.match_id.is_not(None),  # a digest lists matches only
                deliveries_t.c.channel.in_(list(channels)),
                or_(deliveries_t.c.claimed_until.is_(None), deliveries_t.c.claimed_until < now),
            )
            .values(status="rolled", claimed_by=None, claimed_until=None)
            .returning(deliveries_t.c.channel, deliveries_t.c.match_id)
        ).all()
        taken: dict[str, list[int]] = {}
        for channel, match_id in sorted(rows, key=lambda row: (row.channel, row.match_id)):
            taken.setdefault(channel, []).append(int(match_id))
        return taken


def _pending_digest_stories(connection: Connection) -> set[int]:
    """The stories of the matches pending digests carry (by id in their payloads, see
    ``Store.close_digest_window``): a digest rebuilds its content from them when sent."""
    match_ids: set[int] = set()
    for (payload,) in connection.execute(
        select(deliveries_t.c.payload).where(
            deliveries_t.c.status == "pending", deliveries_t.c.kind == "digest"
        )
    ):
        for key in ("matches", "overflow"):
            match_ids.update(int(i) for i in (payload or {}).get(key, ()))
    stories: set[int] = set()
    for chunk in _chunks(sorted(match_ids)):
        stories.update(
            connection.execute(
                select(matches_t.c.story_id).where(matches_t.c.id.in_(chunk))
            ).scalars()
        )
    return stories


def _not_carried(
    connection: Connection, digests: Mapping[str, set[str]], overflow: dict[str, list[int]]
) -> dict[str, list[int]]:
    """``overflow`` less the matches a digest sending to their channel (``digests``, by
    channel) carried in an earlier window.

    A match of an ``alert: both`` watch-list is in the digest of its window; when its
    instant alert is held back after that window closed (quiet hours, a slow outbox), the
    reader has seen the story already, and the next digest on that channel, whichever it
    is, must not show it again.
    """
    wanted = sorted({match_id for ids in overflow.values() for match_id in ids})
    names = sorted({name for channel in overflow for name in digests.get(channel, ())})
    carried: dict[int, set[str]] = {}
    for chunk in _chunks(wanted):
        for digest, match_id in connection.execute(
            select(digest_matches_t.c.digest, digest_matches_t.c.match_id).where(
                digest_matches_t.c.digest.in_(names), digest_matches_t.c.match_id.in_(chunk)
            )
        ):
            carried.setdefault(int(match_id), set()).add(digest)
    kept = {
        channel: [i for i in ids if not carried.get(i, set()) & digests.get(channel, set())]
        for channel, ids in overflow.items()
    }
    return {channel: ids for channel, ids in kept.items() if ids}


# Parameters per IN list of the ingest's lookups.
_CHUNK = 2000
# What a poll needs to know of its items already stored: one query per source and chunk.
_STORED_COLUMNS = (
    items_t.c.id,
    items_t.c.key,
    items_t.c.content_hash,
    items_t.c.story_id,
    items_t.c.url,
    items_t.c.title,
    items_t.c.file,
)
# The bodies of stored rows: of documents another file's document under their title may
# be a version of (see _other_documents), of edited items (see _story_versions).
_BODIES = select(items_t.c.id, items_t.c.body).where(
    items_t.c.id.in_(bindparam("ids", expanding=True))
)
# Run with a list of parameter sets: the columns to set come from their keys.
_UPDATE_ITEM = update(items_t).where(items_t.c.id == bindparam("item_id"))
# A stored document found in another file (see _move): its file, and its key of its own
# when no other row has the key it takes.
_MOVE_ITEM = (
    update(items_t).where(items_t.c.id == bindparam("b_id")).values(file=bindparam("b_file"))
)
_OTHER_ITEM = items_t.alias("other_item")
_REKEY_ITEM = (
    update(items_t)
    .where(
        items_t.c.id == bindparam("b_id"),
        items_t.c.key == bindparam("b_old_key"),
        ~select(_OTHER_ITEM.c.id)
        .where(
            _OTHER_ITEM.c.source == items_t.c.source,
            _OTHER_ITEM.c.key == bindparam("b_key"),
        )
        .exists(),
    )
    .values(key=bindparam("b_key"))
)


# The outbox renews its claims and records sends a chunk of a batch at a time.
_HELD = and_(
    deliveries_t.c.id.in_(bindparam("ids", expanding=True)),
    deliveries_t.c.claimed_by == bindparam("b_owner"),
)
_RENEW_CLAIMS = (
    update(deliveries_t)
    .where(_HELD, deliveries_t.c.status == "pending")
    .values(claimed_until=bindparam("b_until"))
    .returning(deliveries_t.c.id)
)
_RELEASE_CLAIMS = (
    update(deliveries_t)
    .where(_HELD, deliveries_t.c.status == "pending")
    .values(claimed_by=None, claimed_until=None)
)
_MARK_SENT = (
    update(deliveries_t)
    .where(_HELD)
    .values(
        status="sent",
        sent_at=bindparam("b_sent_at"),
        attempts=deliveries_t.c.attempts + 1,
        claimed_by=None,
        claimed_until=None,
    )
)


# What a MatchRecord is made of, in its order and then StoredItem's: read by position.
# By column object, a row of both tables (two ``id`` columns) took about 2 us a read,
# most of the time a record took to make.
_RECORD_COLUMNS = (
    matches_t.c.id,
    matches_t.c.watchlist,
    matches_t.c.matched_at,
    matches_t.c.hits,
    *(items_t.c[item_field.name] for item_field in fields(StoredItem)),
)
_MATCH_RECORDS = (
    select(*_RECORD_COLUMNS)
    .join(items_t, items_t.c.id == matches_t.c.item_id)
    .join(stories_t, stories_t.c.id == matches_t.c.story_id)
    .where(matches_t.c.id.in_(bindparam("ids", expanding=True)))
)
_STORY_SOURCES = select(items_t.c.story_id, items_t.c.id, items_t.c.source).where(
    items_t.c.story_id.in_(bindparam("ids", expanding=True))
)


@dataclass(frozen=True, slots=True)
class _Statements:
    """The ingest's inserts, built once per dialect: building a statement costs more than
    SQLite takes to run it. Each takes a list of rows (one multi-row INSERT per page, see
    SQLAlchemy's "insertmanyvalues") and returns what it inserted, so rows a unique key
    dropped are simply missing from the answer."""

    insert_items: Insert
    insert_matches: Insert
    insert_deliveries: Insert


@cache
def _statements(dialect: str) -> _Statements:
    insert = insert_for(dialect)
    return _Statements(
        insert_items=insert(items_t)
        .on_conflict_do_nothing(index_elements=[items_t.c.source, items_t.c.key])
        .returning(items_t.c.id, items_t.c.source, items_t.c.key),
        insert_matches=insert(matches_t)
        .on_conflict_do_nothing(
            index_elements=[matches_t.c.story_id, matches_t.c.watchlist, matches_t.c.revision]
        )
        .returning(
            matches_t.c.id, matches_t.c.story_id, matches_t.c.watchlist, matches_t.c.revision
        ),
        insert_deliveries=insert(deliveries_t)
        .on_conflict_do_nothing(index_elements=[deliveries_t.c.key])
        .returning(deliveries_t.c.id),
    )


@dataclass(frozen=True, slots=True)
class _Lookups:
    """A poll's lookups of its stored items, built once per dialect, each list of keys or
    hashes one parameter (``in_values``): an expanding IN rendered a parameter per value
    (an item's key and its other keys, five an item) at every poll, and each length was
    a new statement for SQLite to prepare."""

    existing_items: Select[Any]  # a source's rows under one of the keys
    same_text_items: Select[Any]  # a source's rows with one of the texts (_same_text_rows)


@cache
def _lookups(dialect: str) -> _Lookups:
    source = items_t.c.source == bindparam("source")
    return _Lookups(
        existing_items=select(*_STORED_COLUMNS).where(
            source, in_values(items_t.c.key, "keys", dialect)
        ),
        same_text_items=select(*_STORED_COLUMNS, items_t.c.source).where(
            source, in_values(items_t.c.content_hash, "hashes", dialect)
        ),
    )


# Which rows a lease may take besides free ones: any ("free"), a source due to be polled
# at ``now`` ("due"), a digest window ending before ``now`` ("before_window_end").
LeaseWhen = Literal["free", "due", "before_window_end"]


@cache
def _lease_statements(dialect: str, table_name: str, when: LeaseWhen) -> tuple[Update, Insert]:
    """A lease's UPDATE (parameters ``b_name``, ``b_now``, ``b_owner``, ``b_until``) and
    its INSERT of a missing row, built once: a source is claimed at every poll, and
    building these statements cost more than running them."""
    table = {sources_t.name: sources_t, digests_t.name: digests_t}[table_name]
    conditions = [table.c.name == bindparam("b_name"), *_lease_conditions(table, when)]
    take = (
        update(table)
        .where(*conditions)
        .values(lease_owner=bindparam("b_owner"), lease_until=bindparam("b_until"))
        .returning(*table.c)
    )
    create = (
        insert_for(dialect)(table)
        .on_conflict_do_nothing(index_elements=[table.c.name])
        .returning(*table.c)
    )
    return take, create


@cache
def _lease_many_statement(when: LeaseWhen) -> Update:
    """``_lease_statements``' UPDATE of source_state for the names in ``b_names`` at once."""
    conditions = [
        sources_t.c.name.in_(bindparam("b_names", expanding=True)),
        *_lease_conditions(sources_t, when),
    ]
    return (
        update(sources_t)
        .where(*conditions)
        .values(lease_owner=bindparam("b_owner"), lease_until=bindparam("b_until"))
        .returning(*sources_t.c)
    )


def _first_mapping(row: Row[Any] | None) -> RowMapping | None:
    return None if row is None else row._mapping


def _lease_conditions(table: Table, when: LeaseWhen) -> list[ColumnElement[bool]]:
    """What a row must be for a lease to take it, besides its name (see LeaseWhen)."""
    conditions = [or_(table.c.lease_until.is_(None), table.c.lease_until < bindparam("b_now"))]
    if when == "due":
        conditions.append(or_(table.c.next_poll.is_(None), table.c.next_poll <= bindparam("b_now")))
    elif when == "before_window_end":
        conditions.append(table.c.window_end < bindparam("b_now"))
    return conditions


@cache
def _upsert_source_statements(dialect: str) -> tuple[Insert, Insert]:
    """The source-state upsert for anyone, and the one only the lease holder
    (``b_owner``) may make; the values are the row's columns. Each returns the names it
    wrote (rowcount is not told for an upsert on every driver)."""
    statement = insert_for(dialect)(sources_t)
    columns = [*_state_values(SourceState("", {})), "lease_owner", "lease_until"]
    changes = {column: statement.excluded[column] for column in columns if column != "name"}
    anyone = statement.on_conflict_do_update(
        index_elements=[sources_t.c.name], set_=changes
    ).returning(sources_t.c.name)
    only_owner = statement.on_conflict_do_update(
        index_elements=[sources_t.c.name],
        set_=changes,
        where=sources_t.c.lease_owner == bindparam("b_owner"),
    ).returning(sources_t.c.name)
    return anyone, only_owner


T = TypeVar("T")


def _other_sources(carried: list[tuple[int, str]], item_id: int) -> list[str]:
    """The sources of a story's items other than item ``item_id``'s own source: one that
    carried the story twice (a wire's "UPDATE 1") is not another outlet."""
    own = {source for item, source in carried if item == item_id}
    return sorted({source for _, source in carried} - own)


def _chunks(values: Sequence[T]) -> Iterator[list[T]]:
    for start in range(0, len(values), _CHUNK):
        yield list(values[start : start + _CHUNK])


def _stored_rows(
    connection: Connection, batch: list[tuple[Item, dict[str, Any]]]
) -> tuple[list[tuple[Item, dict[str, Any]]], list[Any]]:
    """The stored row of each item of ``batch`` (None for a new one), found under its
    key or one of its other keys; and ``batch``, where an item that is another story
    than the row under its name (``_another_story``) has a key of its own
    (``story_key``), its row looked up under that key.

    The key of its own is looked up from the start too: once retention forgets the row
    under the name, the story there now is still found under its own key, not stored
    (and perhaps alerted) again as the name's new first story."""
    wanted = [(item.source, [values["key"], *_other_keys(item, values)]) for item, values in batch]
    existing = _existing_items(connection, wanted)
    rows = [_found(existing, source, keys) for source, keys in wanted]
    apart = [
        at for at, row in enumerate(rows) if row is not None and _another_story(row, batch[at][0])
    ]
    apart += _other_documents(connection, batch, rows)
    if not apart:
        return batch, rows
    batch = list(batch)
    for at in apart:
        item, values = batch[at]
        batch[at] = (item, {**values, "key": _own_key(item, values["key"])})
    own = [(batch[at][0].source, [batch[at][1]["key"]]) for at in apart]
    existing = _existing_items(connection, own)
    for at, (source, (key,)) in zip(apart, own, strict=True):
        rows[at] = existing.get((source, key))
    return batch, rows


def _same_text_rows(
    connection: Connection, batch: list[tuple[Item, dict[str, Any]]], rows: list[Any]
) -> list[Any]:
    """``rows``, where an item with a link that no key found unchanged is the stored row
    at its canonical link with its text, if there is one. An entry's name can change
    while it stays the same entry: a link that a live report's entries share keys them by
    content until the older scroll out, a GUID that is a URL comes back with other
    tracking parameters, a fragment, another generator's style. Taken as new, such an
    entry was stored again, and a short one alerted again; taken as an edit of the row
    its new name found, it overwrote another entry."""
    wanted = [
        at
        for at, ((item, _), row) in enumerate(zip(batch, rows, strict=True))
        if (item.url is not None or item.file is not None)
        and (row is None or row.content_hash != item.content_hash)
    ]
    if not wanted:
        return rows
    by_source: dict[str, list[str]] = {}
    for at in wanted:
        item = batch[at][0]
        by_source.setdefault(item.source, []).append(item.content_hash)
    same: dict[tuple[str, str | None, str], Any] = {}
    for stored in _rows_with_texts(connection, by_source):
        same.setdefault((stored.source, stored.url, stored.content_hash), stored)
    rows = list(rows)
    for at in wanted:
        item = batch[at][0]
        rows[at] = same.get((item.source, item.url, item.content_hash), rows[at])
    return rows


def _story_versions(
    connection: Connection, edited: list[tuple[IngestedItem, Any]]
) -> list[tuple[Item, int]]:
    """The edited items (each with its stored row, before the edit) whose new text is a
    later version of their story (``stories.edited_version``), with their story's id: a
    feed reusing an entry's name for another story makes no version of the first, or
    every other outlet's copy of the other story would join the first and never alert."""
    bodies = _bodies(connection, {row.id for _, row in edited})
    return [
        (ingested.item, ingested.story_id)
        for ingested, row in edited
        if stories.edited_version(bodies[row.id], ingested.item.body)
    ]


def _other_keys(item: Item, values: Mapping[str, Any]) -> tuple[str, ...]:
    """Keys besides its own that ``item`` may be stored under: see ``_stored_rows``."""
    own = _own_key(item, values["key"])
    others = tuple(_fitting_key(key) for key in item.other_keys)
    return others if own is None else (*others, own)


def _own_key(item: Item, key: str) -> str | None:
    """The key ``item`` has when it is another story than the row under its name
    ``key``: the name and its link (a feed's entry), or its file (a folder document),
    cut to the key column as it is stored (the name may fill the column already)."""
    if item.url is not None:
        return _fitting_key(story_key(key, item.url))
    if item.file is not None:
        return _fitting_key(file_story_key(key, item.file))
    return None


def _other_documents(
    connection: Connection, batch: list[tuple[Item, dict[str, Any]]], rows: list[Any]
) -> list[int]:
    """Where in ``batch`` a folder document is another story than the stored one its
    title found: read from another file, and its body no version of the stored one's
    (``stories.versions``). A recurring title ("Security daily brief") over each day's
    news in a file of its own was one document, each day an edit of the first, and with
    the default ``on_update: new_match`` a day matching the same watch-list never
    alerted. A renamed file keeps its text, and an edited one its file: either is the
    stored document still."""
    maybe = {
        at: row.id
        for at, ((item, _), row) in enumerate(zip(batch, rows, strict=True))
        if row is not None
        and item.file is not None
        and row.file is not None
        and row.file != item.file
        and row.url is None
        and row.content_hash != item.content_hash
    }
    if not maybe:
        return []
    bodies = _bodies(connection, set(maybe.values()))
    return [
        at
        for at, row_id in maybe.items()
        if not stories.versions(bodies[row_id], batch[at][0].body)
    ]


def _bodies(connection: Connection, ids: Collection[int]) -> dict[int, str]:
    """The bodies of the stored rows ``ids``, by id."""
    bodies: dict[int, str] = {}
    for chunk in _chunks(sorted(ids)):
        bodies.update((row.id, row.body) for row in connection.execute(_BODIES, {"ids": chunk}))
    return bodies


def _rows_with_texts(
    connection: Connection, hashes: Mapping[str, Collection[str]]
) -> Iterator[Any]:
    """The stored rows of each source of ``hashes`` with one of its content hashes."""
    for source, wanted in hashes.items():
        for chunk in _chunks(sorted(set(wanted))):
            yield from connection.execute(
                _lookups(connection.dialect.name).same_text_items,
                {"source": source, "hashes": chunk},
            )


def _existing_items(
    connection: Connection, wanted: Sequence[tuple[str, list[str]]]
) -> dict[tuple[str, str], Any]:
    """The stored rows of the (source, keys) ``wanted``, by (source, key): a query a
    source (a chunk of keys at a time)."""
    by_source: dict[str, list[str]] = {}
    for source, keys in wanted:
        by_source.setdefault(source, []).extend(keys)
    existing: dict[tuple[str, str], Any] = {}
    for source, keys in by_source.items():
        for chunk in _chunks(keys):
            rows = connection.execute(
                _lookups(connection.dialect.name).existing_items, {"source": source, "keys": chunk}
            )
            existing.update(((source, row.key), row) for row in rows)
    return existing


def _another_story(stored: Any, item: Item) -> bool:
    """Whether ``item``, under the name of the ``stored`` row, is another story: another
    title at another link. A "latest headline" feed keeps one GUID for whatever its one
    entry is now; taken as an update, the new story would alert no watch-list that the
    first matched. An edit keeps its link, or its title."""
    return (
        stored.url is not None
        and item.url is not None
        and stored.url != item.url
        and stored.title != item.title
    )


def _found(existing: Mapping[tuple[str, str], Any], source: str, keys: list[str]) -> Any:
    """The stored row of the first of ``keys`` (an item's key, then its other keys)."""
    for key in keys:
        row = existing.get((source, key))
        if row is not None:
            return row
    return None


def _by_fingerprint(item: Item) -> str:
    return item.fingerprint


def _rounds(
    batch: list[tuple[Item, dict[str, Any]]], stored: Mapping[tuple[str, str], str | None] = {}
) -> list[list[tuple[Item, dict[str, Any]]]]:
    """A poll's items split so that no round holds one (source, key) twice: a feed that
    repeats an entry gets it stored, then compared (unchanged or updated), as it would
    one at a time. Nearly every poll is one round.

    Of the items under one key, those whose text is ``stored`` (their source and content
    hash, and the file of a row with it) come first: a document archived under another
    file name as a new one is written under its name and title is then found in its new
    file before the new one is read (see ``_move``), and the new one is another document,
    not an edit of it. Among those, each comes after the one whose row leaves the file it
    moves into (see ``_moves_in_turn``)."""
    groups: dict[tuple[str, str], list[tuple[Item, dict[str, Any]]]] = {}
    for item, values in batch:
        groups.setdefault((item.source, values["key"]), []).append((item, values))
    rounds: list[list[tuple[Item, dict[str, Any]]]] = []
    for members in groups.values():
        if len(members) > 1:
            members = _moves_in_turn(members, stored)
        for n, member in enumerate(members):
            if n == len(rounds):
                rounds.append([])
            rounds[n].append(member)
    return rounds


def _moves_in_turn(
    members: list[tuple[Item, dict[str, Any]]], stored: Mapping[tuple[str, str], str | None]
) -> list[tuple[Item, dict[str, Any]]]:
    """``members`` (items under one key), those with a stored text first, each of those
    after the one whose stored row is in the file it is read from. A brief rotated as
    logrotate does (brief.1.txt to brief.2.txt, brief.txt to brief.1.txt, a new
    brief.txt) moves each archived row into the file another row leaves in the same
    poll: taken in another order, a row found in its new file could not take that file's
    key (the other row still had it), and the new brief.txt later found the row by its
    old file's key and was taken as its edit (and alerted nothing new)."""
    moving = [member for member in members if not _unstored(member[0], stored)]
    ordered: list[tuple[Item, dict[str, Any]]] = []
    while moving:
        # The files rows still to move are in: a member moving into one of them waits.
        leaving = {stored[(item.source, item.content_hash)] for item, _ in moving}
        ready = next(
            (
                member
                for member in moving
                if member[0].file not in leaving - {_file_of(member, stored)}
            ),
            moving[0],  # a cycle (two files swapped): any order
        )
        ordered.append(ready)
        moving.remove(ready)
    return ordered + [member for member in members if _unstored(member[0], stored)]


def _file_of(
    member: tuple[Item, dict[str, Any]], stored: Mapping[tuple[str, str], str | None]
) -> str | None:
    """The file of the stored row with ``member``'s text."""
    return stored[(member[0].source, member[0].content_hash)]


def _unstored(item: Item, stored: Mapping[tuple[str, str], str | None]) -> bool:
    return (item.source, item.content_hash) not in stored


def _stored_texts(
    connection: Connection, batch: list[tuple[Item, dict[str, Any]]]
) -> dict[tuple[str, str], str | None]:
    """The (source, content hash) of the stored texts of those folder documents of
    ``batch`` that share their key with another item of it (see ``_rounds``), and the
    file of a row with each: no query for a poll without such documents, nearly every
    poll."""
    count: dict[tuple[str, str], int] = {}
    for item, values in batch:
        identity = (item.source, values["key"])
        count[identity] = count.get(identity, 0) + 1
    by_source: dict[str, set[str]] = {}
    for item, values in batch:
        if item.file is not None and count[(item.source, values["key"])] > 1:
            by_source.setdefault(item.source, set()).add(item.content_hash)
    return {
        (row.source, row.content_hash): row.file for row in _rows_with_texts(connection, by_source)
    }


def _move(stored: Any, item: Item, values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The move of the ``stored`` row of a folder document found with its text in
    another file (renamed, archived), as parameters of _MOVE_ITEM and _REKEY_ITEM; none
    for any other item. The row follows its text: a new file later written under the
    old name, with news of its own under the same title, is then another document (see
    ``_other_documents``), not an edit of the stored one. A row keyed by its old file
    (``file_story_key``) takes the key of its new file, which the new file's item was
    looked up under and not found: the old file's key is left to a new document there."""
    if item.file is None or stored.url is not None or stored.file == item.file:
        return []
    base = _fitting_key(item.key)
    old_key = stored.key
    if stored.file is not None and old_key == _own_key(replace(item, file=stored.file), base):
        new_key = _own_key(item, base)
    else:
        new_key = old_key
    return [{"b_id": stored.id, "b_file": item.file, "b_old_key": old_key, "b_key": new_key}]


def _item_values(item: Item, now: datetime) -> dict[str, Any]:
    return _storable(
        {
            "source": item.source,
            "key": item.key,
            "url": item.url,
            "title": item.title,
            "body": item.body,
            "html": item.html,
            "author": item.author,
            "published": item.published,
            "fetched_at": now,
            "content_hash": item.content_hash,
            "body_hash": body_hash(item.body),
            "headline_hash": headline_hash(item.title),
            "file": item.file,
        }
    )


def _delivery_values(
    *,
    key: str,
    kind: str,
    channel: str,
    recipient: str,
    watchlist: str | None,
    match_id: int | None,
    payload: dict[str, Any],
    now: datetime,
    due_at: datetime,
) -> dict[str, Any]:
    return {
        "key": key,
        "kind": kind,
        "channel": channel,
        "recipient": recipient,
        "watchlist": watchlist,
        "match_id": match_id,
        "payload": payload,
        "status": "pending",
        "attempts": 0,
        "created_at": now,
        "due_at": due_at,
    }


def delivery_key(story_id: int, watchlist: str, revision: str, channel: str, recipient: str) -> str:
    """The idempotency key of an instant alert: one per story, watch-list and channel."""
    parts = [f"s{story_id}", watchlist, channel]
    if revision:
        parts.append(revision[:16])
    if recipient:
        parts.append(recipient)
    return ".".join(parts)


def _storable(values: dict[str, Any]) -> dict[str, Any]:
    """An item's column values as PostgreSQL takes them (SQLite would take anything; both
    keep the same): text without NUL characters, and a key that fits its column, cut
    and ended with a hash of the whole so that it stays unique."""
    clean = {k: v.replace("\x00", "\ufffd") if isinstance(v, str) else v for k, v in values.items()}
    clean["key"] = _fitting_key(clean["key"])
    return clean


def _fitting_key(key: str) -> str:
    """``key`` as it is stored: one longer than its column is cut and ended with a hash
    of the whole, so that it stays unique. Every key looked up goes through it too, or a
    long one would never find the row stored under it."""
    width = cast(int, cast(String, items_t.c.key.type).length)
    if len(key) <= width:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[: width - len(digest) - 1]}#{digest}"


def _state_values(state: SourceState) -> dict[str, Any]:
    """A source state as source_state column values."""
    return {f.name: getattr(state, f.name) for f in fields(SourceState) if f.name != "items"}


def _source_state(row: Any) -> SourceState:
    return SourceState(
        name=row["name"],
        cursor=row["cursor"] or {},
        health=row["health"],
        failures=row["failures"],
        last_attempt=row["last_attempt"],
        last_success=row["last_success"],
        last_new_item=row["last_new_item"],
        fed_at=row["fed_at"],
        cadence=row["cadence"],
        last_error=row["last_error"],
        last_error_at=row["last_error_at"],
        next_poll=row["next_poll"],
        not_before=row["not_before"],
        url=row["url"],
        items=int(row.get("items") or 0),
    )


def _stored_item(row: Any) -> StoredItem:
    return StoredItem(
        id=row["id"],
        story_id=row["story_id"],
        source=row["source"],
        key=row["key"],
        title=row["title"],
        body=row["body"],
        published=row["published"],
        fetched_at=row["fetched_at"],
        url=row["url"],
        html=row["html"],
        author=row["author"],
    )


def _match_record(row: Any) -> MatchRecord:
    """A row of ``_RECORD_COLUMNS``."""
    match_id, watchlist, matched_at, hits, *item = row
    return MatchRecord(
        id=match_id,
        watchlist=watchlist,
        matched_at=matched_at,
        hits=hits or {},
        item=StoredItem(*item),
    )
