"""Which story each new item of a poll belongs to: the story with its exact fingerprint,
else the most similar recent story found through MinHash LSH bands (a syndicated copy,
see monitor.stories), else, for a paywall notice or a story only notices carried, the
one recent story under its distinctive headline (see ``_Headlines``), else a new story
with its signature and bands.

This runs once per poll inside the ingest transaction, for all of the poll's new items
at once: one query for its source's recent items (where its boilerplate is found, see
``monitor.stories``), their signatures in one numpy pass, one query for the exact
fingerprints, one for the stories sharing a band, one for those candidates' signatures
(the band hashes and story ids passed as one list parameter, see ``in_values``), one for
the items under the new items' distinctive headlines, one
multi-row insert for the new stories and one executemany for their bands (see
``monitor.store.bulk``). Per item,
that was three statements for a new story; SQLAlchemy spends about 0.1 ms on each before
SQLite does anything, more than SQLite itself.

Decisions are the same as taking the items one at a time in the given order: an item
may join a story an earlier item of the same poll created (the poll's own new stories
are candidates too, as the newest ones).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Insert, Select, bindparam, func, select, text

from monitor import stories
from monitor.cpu import CPU_WORK
from monitor.dedup import body_hash, headline_hash, item_fingerprint
from monitor.model import Item
from monitor.store.bulk import insert_many
from monitor.store.dialects import in_values, insert_for
from monitor.store.schema import bands_t, items_t, stories_t, versions_t

if TYPE_CHECKING:
    import numpy as np

    Boilerplate = np.ndarray[Any, np.dtype[np.uint64]]  # a source's recurring shingles

# Parameters per IN list: well under SQLite's and PostgreSQL's limits, and large enough
# that a poll of a few hundred items is one statement.
CHUNK = 2000
# Provisional ids of the stories this poll creates, above any real id: they are the
# newest candidates, and among equally similar candidates the oldest wins (most_similar).
_PROVISIONAL = 1 << 62
# PostgreSQL advisory lock (transaction-scoped) held while a poll assigns and stores its
# new stories: see assign_stories. Any constant; "nmstor", unlikely to meet another app's.
STORY_LOCK = 0x6E6D_7374_6F72


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Statements:
    """The lookups by fingerprint, band and story id (up to hundreds of values, one list
    parameter each) and the inserts, built once per dialect."""

    by_fingerprint: Select[Any]
    versions_by_fingerprint: Select[Any]
    recent: Select[Any]
    band_stories: Select[Any]
    signatures: Select[Any]
    version_signatures: Select[Any]
    titles: Select[Any]
    carrying: Select[Any]
    under_headlines: Select[Any]
    story_texts: Select[Any]
    insert_stories: Insert
    insert_bands: Insert
    insert_versions: Insert


@cache
def _statements(dialect: str) -> _Statements:
    ranked = (
        select(
            bands_t.c.band,
            bands_t.c.story_id,
            func.row_number()
            .over(partition_by=bands_t.c.band, order_by=bands_t.c.story_id.desc())
            .label("rank"),
        )
        .where(in_values(bands_t.c.band, "bands", dialect))
        .subquery()
    )
    insert = insert_for(dialect)
    return _Statements(
        by_fingerprint=select(stories_t.c.id, stories_t.c.fingerprint).where(
            in_values(stories_t.c.fingerprint, "fingerprints", dialect)
        ),
        versions_by_fingerprint=select(versions_t.c.story_id, versions_t.c.fingerprint).where(
            in_values(versions_t.c.fingerprint, "fingerprints", dialect)
        ),
        # The ids first: sorting them needs the (source, key) index alone, where sorting
        # the rows would read every body the source has.
        recent=select(items_t.c.title, items_t.c.body).where(
            items_t.c.id.in_(
                select(items_t.c.id)
                .where(items_t.c.source == bindparam("source"))
                .order_by(items_t.c.id.desc())
                .limit(bindparam("limit"))
            )
        ),
        # The newest MAX_CANDIDATES stories of each band: enough to find each item's
        # newest MAX_CANDIDATES over all its bands (a story among those is among its
        # band's newest).
        band_stories=select(ranked.c.band, ranked.c.story_id).where(
            ranked.c["rank"] <= stories.MAX_CANDIDATES
        ),
        signatures=select(stories_t.c.id, stories_t.c.signature, stories_t.c.first_seen).where(
            in_values(stories_t.c.id, "ids", dialect),
            stories_t.c.first_seen >= bindparam("since"),
        ),
        version_signatures=select(versions_t.c.story_id, versions_t.c.signature).where(
            in_values(versions_t.c.story_id, "ids", dialect),
            versions_t.c.seen >= bindparam("since"),
            versions_t.c.signature.is_not(None),
        ),
        titles=select(items_t.c.story_id, items_t.c.source, items_t.c.title, stories_t.c.first_seen)
        .join(stories_t, stories_t.c.id == items_t.c.story_id)
        .where(in_values(items_t.c.story_id, "ids", dialect)),
        carrying=select(items_t.c.title).where(
            items_t.c.source == bindparam("source"),
            items_t.c.body_hash == bindparam("body_hash"),
        ),
        under_headlines=select(
            items_t.c.headline_hash, items_t.c.story_id, items_t.c.source, stories_t.c.first_seen
        )
        .join(stories_t, stories_t.c.id == items_t.c.story_id)
        .where(in_values(items_t.c.headline_hash, "hashes", dialect)),
        story_texts=select(items_t.c.source, items_t.c.title, items_t.c.body).where(
            items_t.c.story_id == bindparam("story")
        ),
        insert_stories=insert(stories_t)
        .on_conflict_do_nothing(index_elements=[stories_t.c.fingerprint])
        .returning(stories_t.c.id, stories_t.c.fingerprint),
        insert_bands=insert(bands_t).on_conflict_do_nothing(),
        insert_versions=insert(versions_t).on_conflict_do_nothing(
            index_elements=[versions_t.c.fingerprint]
        ),
    )


def _chunks(values: Sequence[T]) -> Iterator[list[T]]:
    for start in range(0, len(values), CHUNK):
        yield list(values[start : start + CHUNK])


def assign_stories(connection: Connection, items: Sequence[Item], now: datetime) -> list[int]:
    """The story id of each item (new items of one poll, in the order they are stored),
    creating stories for the first copies."""
    if not items:
        return []
    _lock_stories(connection)
    statements = _statements(connection.dialect.name)
    readings, boilerplate = _readings(connection, statements, items)
    items = [
        _read_fingerprint(item, reading) for item, reading in zip(items, readings, strict=True)
    ]
    signatures = [reading.signature for reading in readings]
    exact = _existing(connection, statements, sorted({item.fingerprint for item in items}))
    for at in _boilerplate_joins(connection, statements, items, exact, now):
        item = items[at]
        items[at] = replace(item, fingerprint=item_fingerprint(item.title, item.body, item.key))
        signatures[at] = None
        exact.update(_existing(connection, statements, [items[at].fingerprint]))
    wanted = {
        band
        for item, signature in zip(items, signatures, strict=True)
        if signature is not None and item.fingerprint not in exact
        for band in signature.bands
    }
    band_stories: dict[int, list[int]] = {}
    for chunk in _chunks(sorted(wanted)):
        for band, story_id in connection.execute(statements.band_stories, {"bands": chunk}):
            band_stories.setdefault(int(band), []).append(int(story_id))
    known, first_seen = _signatures(connection, statements, band_stories, now)
    headlines = _Headlines(connection, statements, items, exact, now, boilerplate)

    # Decide in order, as if each item were stored before the next is looked up.
    chosen: list[int] = []  # a real id, or _PROVISIONAL + index into `created`
    created: list[tuple[Item, stories.Signature | None]] = []
    joined: list[tuple[Item, stories.Signature | None, int]] = []  # versions, see _join
    by_fingerprint = dict(exact)
    new_bands: dict[int, list[int]] = {}  # band -> provisional ids, oldest first
    for item, signature in zip(items, signatures, strict=True):
        story = by_fingerprint.get(item.fingerprint)
        if story is None and signature is not None:
            story = _similar(signature, band_stories, new_bands, known)
            if story is not None and _young(story, first_seen, now):
                _join(item, signature, story, joined, by_fingerprint, band_stories, known)
        if story is None:
            story, notice = headlines.story_of(item)
            if story is not None and not notice:
                _join(item, signature, story, joined, by_fingerprint, band_stories, known)
        if story is None:
            story = _PROVISIONAL + len(created)
            created.append((item, signature))
            by_fingerprint[item.fingerprint] = story
            if signature is not None:
                known[story] = [signature.values]
                for band in set(signature.bands):
                    new_bands.setdefault(band, []).append(story)
        chosen.append(story)
    real = _create(connection, statements, created, now) if created else []

    def resolved(story: int) -> int:
        return real[story - _PROVISIONAL] if story >= _PROVISIONAL else story

    _insert_versions(
        connection,
        statements,
        [(item, signature, resolved(story)) for item, signature, story in joined],
        now,
    )
    return [resolved(story) for story in chosen]


def _young(story: int, first_seen: dict[int, datetime], now: datetime) -> bool:
    """Whether ``story`` was first seen within ``stories.VERSION_SPAN``: one of this
    poll's, or a stored one seen lately (one seen before the window is known to be old
    by its absence from ``first_seen``)."""
    if story >= _PROVISIONAL:
        return True
    seen = first_seen.get(story)
    return seen is not None and seen >= now - stories.VERSION_SPAN


def _join(
    item: Item,
    signature: stories.Signature | None,
    story: int,
    joined: list[tuple[Item, stories.Signature | None, int]],
    by_fingerprint: dict[str, int],
    band_stories: dict[int, list[int]],
    known: dict[int, list[tuple[int, ...]]],
) -> None:
    """Take ``item``, which joins ``story`` by similarity soon after it was first seen
    (``stories.VERSION_SPAN``), or tells the story only notices carried (see
    ``_Headlines``), as a version of it (its fingerprint, signature and bands, as an
    edit's, see ``index_versions``), for the rest of the poll too.

    A story was known by its first version and its edits alone: a wire's UPDATE 1 under
    a new GUID joined its story, and UPDATE 2, a paragraph further from the first
    version, was compared with the first alone, made a story of its own and alerted
    again (and so did a paper's copy of it). Only soon after: each join also keeps the
    story alive and wider, and a month of daily reports chained into one story."""
    joined.append((item, signature, story))
    by_fingerprint.setdefault(item.fingerprint, story)
    if signature is None:  # a short story that joined notices by its headline
        return
    known.setdefault(story, []).append(signature.values)
    for band in set(signature.bands):
        holders = band_stories.setdefault(band, [])
        if story not in holders:
            holders.append(story)


@dataclass(frozen=True, slots=True)
class _Carried:
    """The one stored story a headline is carried under, and the sources carrying it
    there."""

    story: int
    sources: frozenset[str]


class _Headlines:
    """The stored story each new item joins by its headline alone, if any: a paywall or
    teaser notice (``stories.notice``, or once its source's boilerplate is discounted,
    ``stories.notice_under_boilerplate``) joins the story carried under the same headline,
    told in full or noticed by another outlet, and a story in full joins the notices
    carrying its headline. Two papers' notices are one story before the full text comes:
    as two, each alerted what the headline matches, and the full text, its headline
    carried by two stories, joined neither. A notice from an outlet that carries the
    headline there already is no copy: a short line that tells nothing of the headline,
    under the outlet's own story or notice, is more often news ("Crossings resume at
    noon") than the outlet's notice of it.

    Only on evidence that it is one story, as a miss is worse than a duplicate: the
    headline is distinctive (``stories.distinctive_headline``), one stored story alone
    carries it, from any source (a headline carried by two is recurring, and a notice
    under it could be either's or news of its own), and that story was first seen within
    ``stories.VERSION_SPAN`` (a day later the same words are another day's news). Copies
    of the full text join as they would (it becomes one of the story's versions); a
    notice joins as nothing (its body names no story, and would join other notices).
    One query for the poll's items with a distinctive headline and no story by
    fingerprint, and one per story a full item would join, to see that only notices
    carry it (and one per source of a stored item that is a notice only once its source's
    boilerplate is discounted, to find that boilerplate)."""

    def __init__(
        self,
        connection: Connection,
        statements: _Statements,
        items: Sequence[Item],
        exact: dict[str, int],
        now: datetime,
        boilerplate: Mapping[str, Boilerplate],
    ) -> None:
        self._connection = connection
        self._statements = statements
        self._carried = _carried(connection, statements, items, exact, now)
        self._only_notices: dict[int, bool] = {}
        self._new_boilerplate = boilerplate  # by source, with this poll's items
        self._boilerplate: dict[str, Boilerplate] = {}  # by source, stored items alone

    def story_of(self, item: Item) -> tuple[int | None, bool]:
        """The story ``item`` joins by its headline (see the class), else None, and
        whether the item is a notice, its source's boilerplate discounted (asked only of
        an item whose headline a stored story carries: most items are not)."""
        carried = self._carried.get(headline_hash(item.title))
        if carried is None:
            return None, False
        if self._is_notice(item):
            return (carried.story if item.source not in carried.sources else None), True
        return (carried.story if self._notices_alone(carried.story) else None), False

    def _is_notice(self, item: Item) -> bool:
        """Whether a new item is a notice, its source's boilerplate discounted."""
        if stories.notice(item.body, item.title):
            return True
        with CPU_WORK:
            text = stories.Words.of(item.title, item.body)
            return stories.notice_under_boilerplate(text, self._new_boilerplate[item.source])

    def _notices_alone(self, story: int) -> bool:
        """Whether every stored item of ``story`` is a notice, its source's boilerplate
        discounted (a paper's notice above its long footer is one too)."""
        if story not in self._only_notices:
            rows = self._connection.execute(self._statements.story_texts, {"story": story})
            self._only_notices[story] = all(
                stories.notice(body, title) or self._notice_of(source, title, body)
                for source, title, body in rows
            )
        return self._only_notices[story]

    def _notice_of(self, source: str, title: str, body: str) -> bool:
        """Whether a stored item of ``source`` is a notice once the source's boilerplate,
        as its recent items show it now, is discounted."""
        if source not in self._boilerplate:
            self._boilerplate[source] = _source_boilerplate(
                self._connection, self._statements, source, []
            )
        with CPU_WORK:
            text = stories.Words.of(title, body)
            return stories.notice_under_boilerplate(text, self._boilerplate[source])


def _carried(
    connection: Connection,
    statements: _Statements,
    items: Sequence[Item],
    exact: dict[str, int],
    now: datetime,
) -> dict[str, _Carried]:
    """By headline hash, the one stored story first seen within VERSION_SPAN that carries
    the distinctive headline of an item without a story by fingerprint (see
    ``_Headlines``); a headline two stories carry is left out."""
    wanted = sorted(
        {
            headline_hash(item.title)
            for item in items
            if item.fingerprint not in exact and stories.distinctive_headline(item.title)
        }
    )
    rows: dict[str, list[Any]] = {}
    for chunk in _chunks(wanted):
        for row in connection.execute(statements.under_headlines, {"hashes": chunk}):
            rows.setdefault(row.headline_hash, []).append(row)
    found: dict[str, _Carried] = {}
    for hashed, carrying in rows.items():
        if len({row.story_id for row in carrying}) > 1:
            continue
        if carrying[0].first_seen < now - stories.VERSION_SPAN:
            continue
        sources = frozenset(row.source for row in carrying)
        found[hashed] = _Carried(int(carrying[0].story_id), sources)
    return found


def index_versions(
    connection: Connection, versions: Sequence[tuple[Item, int]], now: datetime
) -> None:
    """Index each edited item's new text (``versions``: the item and its story's id) as a
    version of its story: its fingerprint, signature and bands. A story was known by its
    first version alone, and a wire's breaking stub, edited into the full story, left the
    full story unknown: a paper carrying it word for word was a new story and alerted
    again. A fingerprint some story has already is left to it."""
    if not versions:
        return
    _lock_stories(connection)
    statements = _statements(connection.dialect.name)
    items = [item for item, _ in versions]
    readings, _ = _readings(connection, statements, items)
    items = [
        _read_fingerprint(item, reading) for item, reading in zip(items, readings, strict=True)
    ]
    taken = _existing(connection, statements, sorted({item.fingerprint for item in items}))
    _insert_versions(
        connection,
        statements,
        [
            (item, reading.signature, story)
            for item, (_, story), reading in zip(items, versions, readings, strict=True)
            if item.fingerprint not in taken
        ],
        now,
    )


def _insert_versions(
    connection: Connection,
    statements: _Statements,
    versions: Sequence[tuple[Item, stories.Signature | None, int]],
    now: datetime,
) -> None:
    """Store each item's fingerprint and signature (``versions``: with its story's id) as
    a version of its story, and its bands under the story's id; the first of a
    fingerprint only."""
    rows: dict[str, dict[str, Any]] = {}
    bands: set[tuple[int, int]] = set()
    for item, signature, story in versions:
        if item.fingerprint in rows:
            continue
        rows[item.fingerprint] = {
            "fingerprint": item.fingerprint,
            "story_id": story,
            "seen": now,
            "signature": signature.stored() if signature else None,
        }
        if signature is not None:
            bands.update((band, story) for band in signature.bands)
    if rows:
        connection.execute(statements.insert_versions, list(rows.values()))
    insert_many(connection, statements.insert_bands, ("band", "story_id"), sorted(bands))


def _boilerplate_joins(
    connection: Connection,
    statements: _Statements,
    items: list[Item],
    exact: dict[str, int],
    now: datetime,
) -> list[int]:
    """The items that would join a stored story by a short body alone, under a headline
    none of the story's items has, or under one of them as a notice (telling nothing of
    its headline, see ``stories.tells_of``) that the headline join would not take for a
    copy (see ``_copied_notice``), where that body is boilerplate: their fingerprint then
    binds their title and key, and they are compared by nothing else but their headline
    (see ``_Headlines``).

    A paywall notice names no story, and ``stories.recurring`` knows it only while its
    source's RECENT items show it under two headlines: a paper's paywalled story after
    many free ones joined the story whose body was the notice before, and never
    alerted. The body is boilerplate when the item's own source carried the story and
    the body tells nothing of the item's headline (``stories.tells_of``: a notice shares
    no word with it; a short story its wire issues again under another headline does,
    and joins), or it tells nothing of any headline it was carried under, the story's
    and the item's (two papers of one group, each showing the notice for the first time:
    the second paper's story joined the first's and never alerted), or a source that
    carried it has carried the body under two stories' headlines it tells nothing of
    (another paper of the group). A short story another outlet retitles still joins
    where its body tells of a headline of it, as 92% of Reuters' short stories do of
    their own. A notice under the story's headline is no exception: one group's notice of
    STORY_WORDS words or more, its fingerprint its body's alone, under a recurring
    headline ("Market report") joined another paper's days later, and the second paper's
    item never alerted. Such joins are rare: most polls query nothing here."""
    short = [
        at
        for at, item in enumerate(items)
        if item.fingerprint in exact and stories.short_body(item.body)
    ]
    if not short:
        return []
    carried: dict[int, list[tuple[str, str]]] = {}
    first_seen: dict[int, datetime] = {}
    for chunk in _chunks(sorted({exact[items[at].fingerprint] for at in short})):
        for story_id, source, title, seen in connection.execute(statements.titles, {"ids": chunk}):
            carried.setdefault(int(story_id), []).append((source, title))
            first_seen[int(story_id)] = seen
    found = []
    for at in short:
        item = items[at]
        story = carried.get(exact[item.fingerprint], [])
        untold = not stories.tells_of(item.body, item.title)
        if stories.one_story_headline(item.title, (title for _, title in story)) and (
            not untold or _copied_notice(item.title, first_seen.get(exact[item.fingerprint]), now)
        ):
            continue
        sources = sorted({source for source, _ in story})
        own = item.source in sources and untold
        nowhere = untold and not any(stories.tells_of(item.body, title) for _, title in story)
        if own or nowhere or _a_template(connection, statements, item.body, sources):
            found.append(at)
    return found


def _copied_notice(title: str, first_seen: datetime | None, now: datetime) -> bool:
    """Whether a notice under ``title``, one story's headline with a story first seen at
    ``first_seen`` that carries the notice's body, is that story's copy, on the headline
    join's evidence (see ``_Headlines``): the headline is distinctive and the story first
    seen within VERSION_SPAN. From its own outlet too: a wire's brief issued again as its
    count of dead rises ("3명", "5명") is its story."""
    return (
        first_seen is not None
        and first_seen >= now - stories.VERSION_SPAN
        and stories.distinctive_headline(title)
    )


def _a_template(
    connection: Connection, statements: _Statements, body: str, sources: list[str]
) -> bool:
    """Whether one of ``sources`` carries ``body`` under two stories' headlines that it
    tells nothing of (``stories.tells_of``): a short story its source issued again under
    another headline is no template, and a copy of it elsewhere joins it."""
    hashed = body_hash(body)
    for source in sources:
        rows = connection.execute(statements.carrying, {"source": source, "body_hash": hashed})
        titles = (title for (title,) in rows if not stories.tells_of(body, title))
        if stories.several_stories(titles):
            return True
    return False


def _read_fingerprint(item: Item, reading: stories.Reading) -> Item:
    """``item`` with the fingerprint its reading calls for: one binding its title and key
    when its body is little but its source's boilerplate (see ``monitor.stories``)."""
    if reading.template_body:
        return replace(item, fingerprint=item_fingerprint(item.title, item.body, item.key))
    return item


def _lock_stories(connection: Connection) -> None:
    """Hold the database's story lock until the transaction ends.

    A syndicated copy meets no unique key: it joins a story only if the lookup sees it.
    Two instances (or `monitor run --once` beside the daemon) storing copies of one story
    at once would each miss the other's uncommitted story, create one of their own, and
    both alert. With the lock taken before the lookup and held to the commit they take
    turns, and the later lookup sees the story the earlier one committed. PostgreSQL: an
    advisory lock. SQLite: its write lock, which a first write takes (reads before it,
    outside any transaction, would not wait for the other process's commit).
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": STORY_LOCK})
    else:
        connection.exec_driver_sql("UPDATE stories SET id = id WHERE 0")


def _readings(
    connection: Connection, statements: _Statements, items: Sequence[Item]
) -> tuple[list[stories.Reading], dict[str, Boilerplate]]:
    """Each item's reading (see ``monitor.stories``), its source's boilerplate dropped:
    the shingles its RECENT newest stored items and this poll's repeat; and that
    boilerplate, by source."""
    by_source: dict[str, list[int]] = {}
    for at, item in enumerate(items):
        by_source.setdefault(item.source, []).append(at)
    readings: dict[int, stories.Reading] = {}
    boilerplate: dict[str, Boilerplate] = {}
    for source, indices in by_source.items():
        with CPU_WORK:  # see monitor.cpu: numpy lets go of the interpreter lock at every step
            texts = [stories.Words.of(items[at].title, items[at].body) for at in indices]
        boilerplate[source] = _source_boilerplate(connection, statements, source, texts)
        with CPU_WORK:
            found = stories.signatures(texts, boilerplate[source])
            readings.update(zip(indices, found, strict=True))
    return [readings[at] for at in range(len(items))], boilerplate


def _source_boilerplate(
    connection: Connection,
    statements: _Statements,
    source: str,
    texts: Sequence[stories.Words],
) -> Boilerplate:
    """``source``'s boilerplate (see ``stories.recurring``): the shingles its RECENT
    newest stored items and ``texts``, its new items of this poll, repeat."""
    recent = connection.execute(
        statements.recent, {"source": source, "limit": stories.RECENT}
    ).all()
    with CPU_WORK:
        known = [stories.Words.of(title, body) for title, body in recent]
        return stories.recurring([*known, *texts], stored=len(known))


def _existing(
    connection: Connection, statements: _Statements, fingerprints: list[str]
) -> dict[str, int]:
    """The stories with ``fingerprints``: as their first version's, else a later one's."""
    found: dict[str, int] = {}
    for query in (statements.by_fingerprint, statements.versions_by_fingerprint):
        wanted = [fingerprint for fingerprint in fingerprints if fingerprint not in found]
        for chunk in _chunks(wanted):
            for story_id, fingerprint in connection.execute(query, {"fingerprints": chunk}):
                found.setdefault(fingerprint, int(story_id))
    return found


def _signatures(
    connection: Connection,
    statements: _Statements,
    band_stories: dict[int, list[int]],
    now: datetime,
) -> tuple[dict[int, list[tuple[int, ...]]], dict[int, datetime]]:
    """Signature values of the candidate stories first seen within the window (those
    with a signature of the current scheme), and of their versions seen within it; and
    when each of those stories was first seen."""
    ids = sorted({story for found in band_stories.values() for story in found})
    known: dict[int, list[tuple[int, ...]]] = {}
    first_seen: dict[int, datetime] = {}
    since = now - stories.WINDOW
    for chunk in _chunks(ids):
        for story_id, stored, seen in connection.execute(
            statements.signatures, {"ids": chunk, "since": since}
        ):
            first_seen[int(story_id)] = seen
            _add_values(known, int(story_id), stored)
        for story_id, stored in connection.execute(
            statements.version_signatures, {"ids": chunk, "since": since}
        ):
            _add_values(known, int(story_id), stored)
    return known, first_seen


def _add_values(known: dict[int, list[tuple[int, ...]]], story: int, stored: object) -> None:
    values = stories.stored_values(stored)
    if values is not None:
        known.setdefault(story, []).append(values)


def _similar(
    signature: stories.Signature,
    band_stories: dict[int, list[int]],
    new_bands: dict[int, list[int]],
    known: dict[int, list[tuple[int, ...]]],
) -> int | None:
    """The most similar candidate: among the newest MAX_CANDIDATES stories sharing a band
    (this poll's own first), those first seen within the window, by the most similar of
    their versions."""
    newest: set[int] = set()
    for band in signature.bands:
        newest.update(band_stories.get(band, ()))
        newest.update(new_bands.get(band, ()))
    candidates = sorted(newest, reverse=True)[: stories.MAX_CANDIDATES]
    return stories.most_similar(
        signature, [(story, values) for story in candidates for values in known.get(story, ())]
    )


def _create(
    connection: Connection,
    statements: _Statements,
    created: list[tuple[Item, stories.Signature | None]],
    now: datetime,
) -> list[int]:
    """Insert the new stories (and their bands); their ids, in order. A story another
    instance created since the lookup is taken as it is, without bands from us."""
    rows = [
        {
            "fingerprint": item.fingerprint,
            "first_seen": now,
            "signature": signature.stored() if signature else None,
        }
        for item, signature in created
    ]
    ids = {
        fingerprint: int(story_id)
        for story_id, fingerprint in connection.execute(statements.insert_stories, rows)
    }
    raced = [item.fingerprint for item, _ in created if item.fingerprint not in ids]
    inserted = set(ids)
    ids.update(_existing(connection, statements, raced))
    # In index order: each page of the band index is visited once, not at random.
    bands = sorted(
        {
            (band, ids[item.fingerprint])
            for item, signature in created
            if signature is not None and item.fingerprint in inserted
            for band in signature.bands
        }
    )
    insert_many(connection, statements.insert_bands, ("band", "story_id"), bands)
    return [ids[item.fingerprint] for item, _ in created]
