"""`monitor replay`: re-match stored items, e.g. against a watch-list added today, and
enqueue what matches (a story that already matched a watch-list is not enqueued again)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Mapping
from typing import cast

from monitor.alerts.route import plan_matches
from monitor.app import build_matcher
from monitor.commands._common import load, since_arg
from monitor.commands.match import add_watchlist_option, selected_watchlists
from monitor.config import WatchlistConfig
from monitor.dedup import content_hash, fingerprint
from monitor.errors import MonitorError
from monitor.model import Document, Hit, Item, StoredItem
from monitor.store import Store, database_exists, open_store
from monitor.store.repo import IngestedItem, MatchKey, PlannedMatch
from monitor.text import terminal_line, utc_before, utc_now
from monitor.watchlists.backtest import TerminalProgress, backtest, terminal_progress

FLUSH_EVERY = 500


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Re-match the items stored in the last --since against the watch-lists (all, "
        "or those named by -w), list what matches and enqueue its alerts. One line per "
        "item and watch-list, tab-separated: new (recorded now; with --dry-run, would be) "
        "or known (matched before), the item's id, the watch-list, the title."
    )
    parser.add_argument(
        "--since", type=since_arg, required=True, help="items fetched this recently (7d)"
    )
    add_watchlist_option(parser)
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list what matches, new or known; record and enqueue nothing",
    )
    parser.set_defaults(func=run)


def as_ingested(stored: StoredItem) -> IngestedItem:
    """A stored item in the shape routing takes (as if new: replay is a first match)."""
    item = Item(
        source=stored.source,
        key=stored.key,
        title=stored.title,
        body=stored.body,
        published=stored.published,
        fingerprint=fingerprint(stored.title, stored.body, stored.key),
        content_hash=content_hash(stored.title, stored.body),
        url=stored.url,
    )
    return IngestedItem(item, "new", stored.id, stored.story_id)


def _store_to_read(url: str) -> Store | None:
    """The store a dry run reads, changing nothing: no file made, no table, no migration.
    None when nothing is stored yet; an older schema is refused."""
    if not database_exists(url):
        return None
    store = open_store(url, upgrade=False)
    schema = store.schema()
    if schema != "current":
        store.close()
    if schema == "older":
        raise MonitorError(
            "the database's schema is older than this version's: run `monitor db upgrade` "
            "first (a dry run changes nothing)"
        )
    return store if schema == "current" else None


def run(args: argparse.Namespace) -> int:
    config = load(args)
    only = selected_watchlists(config, args.watchlist)
    index = build_matcher(config)
    watchlists = {w.name: w for w in config.watchlists}
    if args.dry_run:
        found = _store_to_read(config.monitor.database)
        if found is None:
            print("nothing is stored yet: no items to replay (dry run)", file=sys.stderr)
            return 0
        store = found
    else:
        store = open_store(config.monitor.database)
    matched = 0
    progress = terminal_progress(sys.stderr, sys.stdout)
    batch = _Batch(store, watchlists, dry_run=args.dry_run, progress=progress)
    try:
        items: Iterator[StoredItem] = store.items(since=utc_before(args.since))
        stories = ((item, Document(item.title, item.body, item.source)) for item in items)
        for result in backtest(index, stories, only=only, progress=progress):
            if result.hits:
                matched += 1
                batch.add(cast(StoredItem, result.id), result.hits)  # the ids given above
        batch.flush()
    finally:
        store.close()
    _summary(matched, batch, dry_run=args.dry_run)
    return 0


class _Batch:
    """Planned matches waiting to be recorded (a dry run: looked up) and listed, one line
    per item and watch-list, each said ``new`` (recorded now; a dry run's: would be) or
    ``known`` (matched before, or by another copy of the story listed above it)."""

    def __init__(
        self,
        store: Store,
        watchlists: Mapping[str, WatchlistConfig],
        *,
        dry_run: bool,
        progress: TerminalProgress | None,
    ) -> None:
        self._store = store
        self._watchlists = watchlists
        self._dry_run = dry_run
        self._progress = progress
        self._pending: list[tuple[StoredItem, IngestedItem, PlannedMatch]] = []
        self._would_add: set[MatchKey] = set()  # a dry run's new matches, across batches
        self.enqueued = 0
        self.new_matches = 0

    def add(self, stored: StoredItem, hits: list[Hit]) -> None:
        """Plan the matches of ``stored``'s hits; write them when the batch is full."""
        ingested = as_ingested(stored)
        plans = plan_matches(ingested, hits, self._watchlists)
        self._pending.extend((stored, ingested, plan) for plan in plans)
        if len(self._pending) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        """Record (or look up) the pending matches, then list them."""
        if not self._pending:
            return
        fresh = self._fresh()
        if self._progress is not None:
            self._progress.clear()
        for stored, ingested, plan in self._pending:
            key = (ingested.story_id, plan.watchlist, plan.revision)
            status = "new" if key in fresh else "known"
            fresh.discard(key)  # a second copy of the story adds no second match
            print(f"{status}\t{stored.id}\t{plan.watchlist}\t{terminal_line(stored.title)}")
        self._pending.clear()

    def _fresh(self) -> set[MatchKey]:
        """The pending matches that are new: recorded now, or in a dry run not recorded
        before nor counted in an earlier batch."""
        if self._dry_run:
            keys = {(i.story_id, p.watchlist, p.revision) for _, i, p in self._pending}
            fresh = self._store.unmatched(keys) - self._would_add
            self._would_add |= fresh
        else:
            added = self._store.add_matches([(i, p) for _, i, p in self._pending], now=utc_now())
            self.enqueued += added.deliveries
            fresh = set(added.added_matches)
        self.new_matches += len(fresh)
        return fresh


def _summary(matched: int, batch: _Batch, *, dry_run: bool) -> None:
    """The counts, on stderr under the listing."""
    if dry_run:
        print(
            f"{matched} stored items match; {batch.new_matches} would be new matches "
            "(dry run: nothing enqueued)",
            file=sys.stderr,
        )
    else:
        # A watch-list with `alert: digest` enqueues no alert: its digest collects the
        # match. Counted apart, so "0 alerts enqueued" does not read as "nothing done".
        print(
            f"{matched} stored items match; {batch.enqueued} alerts enqueued, "
            f"{batch.new_matches} new matches (digests collect those of digest watch-lists)",
            file=sys.stderr,
        )
