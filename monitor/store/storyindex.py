"""Which story a new item belongs to: the story with its exact fingerprint, else the
most similar recent story found through MinHash LSH bands (a syndicated copy, see
monitor.stories), else a new story with its signature and bands.

This runs for every new item inside the ingest transaction: three statements for a
new story (one lookup, one insert, the bands), one for a copy, all built once
(building SQLAlchemy statements per call cost more than running them on SQLite).
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import cast

from sqlalchemy import Connection, Insert, Table, bindparam, literal, select, union_all
from sqlalchemy.dialects import postgresql, sqlite

from monitor import stories
from monitor.model import Item
from monitor.store.schema import StoryBandRow, StoryRow

stories_t = cast(Table, StoryRow.__table__)
bands_t = cast(Table, StoryBandRow.__table__)

# One round trip for both questions: the story with this exact fingerprint (exact=1),
# and recent stories sharing a band with this signature (exact=0). One parameter per
# band rather than an expanding IN, so the compiled statement is reused as it is.
_EXACT = select(stories_t.c.id, stories_t.c.signature, literal(1).label("exact")).where(
    stories_t.c.fingerprint == bindparam("fingerprint")
)
_LOOKUP = union_all(
    _EXACT,
    select(stories_t.c.id, stories_t.c.signature, literal(0).label("exact")).where(
        stories_t.c.id.in_(
            select(bands_t.c.story_id)
            .where(bands_t.c.band.in_([bindparam(f"b{i}") for i in range(stories.BANDS)]))
            .order_by(bands_t.c.story_id.desc())
            .limit(stories.MAX_CANDIDATES)
        ),
        stories_t.c.first_seen >= bindparam("since"),
    ),
)


@cache
def _inserts(dialect: str) -> tuple[Insert, Insert]:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(stories_t)
        .on_conflict_do_nothing(index_elements=[stories_t.c.fingerprint])
        .returning(stories_t.c.id),
        insert(bands_t).on_conflict_do_nothing(),
    )


def assign_story(connection: Connection, item: Item, now: datetime) -> int:
    """The id of ``item``'s story, creating the story if it is the first copy."""
    signature = stories.signature(item.title, item.body)
    if signature is None:
        rows = connection.execute(_EXACT, {"fingerprint": item.fingerprint}).all()
    else:
        bands = {f"b{i}": band for i, band in enumerate(signature.bands)}
        since = now - stories.WINDOW
        rows = connection.execute(
            _LOOKUP, {"fingerprint": item.fingerprint, "since": since, **bands}
        ).all()
    exact = next((row.id for row in rows if row.exact), None)
    if exact is not None:
        return int(exact)
    if signature is not None:
        found = stories.best_match(signature, [(row.id, row.signature) for row in rows])
        if found is not None:
            return found
    insert_story, insert_bands = _inserts(connection.dialect.name)
    story_id = connection.execute(
        insert_story,
        {
            "fingerprint": item.fingerprint,
            "first_seen": now,
            "signature": signature.stored() if signature else None,
        },
    ).scalar()
    if story_id is None:  # another instance created it since our lookup
        return int(connection.execute(_EXACT, {"fingerprint": item.fingerprint}).scalar_one())
    if signature is not None:
        connection.execute(
            insert_bands, [{"band": band, "story_id": story_id} for band in set(signature.bands)]
        )
    return int(story_id)
