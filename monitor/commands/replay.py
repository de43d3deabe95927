"""`monitor replay`: re-match stored items, e.g. against a watch-list added today, and
enqueue what matches (a story that already matched a watch-list is not enqueued again)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import cast

from monitor.alerts.route import plan_matches
from monitor.app import build_matcher
from monitor.commands._common import load, since_arg
from monitor.commands.match import add_watchlist_option, selected_watchlists
from monitor.dedup import content_hash, fingerprint
from monitor.errors import MonitorError
from monitor.model import Document, Item, StoredItem
from monitor.store import Store, database_exists, open_store
from monitor.store.repo import IngestedItem, PlannedMatch
from monitor.text import terminal_line, utc_before, utc_now
from monitor.watchlists.backtest import backtest, terminal_progress

FLUSH_EVERY = 500


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Re-match the items stored in the last --since against the watch-lists (all, "
        "or those named by -w), list what matches and enqueue its alerts."
    )
    parser.add_argument(
        "--since", type=since_arg, required=True, help="items fetched this recently (7d)"
    )
    add_watchlist_option(parser)
    parser.add_argument("--dry-run", action="store_true", help="list what matches; enqueue nothing")
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
    matched = enqueued = new_matches = 0
    pending: list[tuple[IngestedItem, PlannedMatch]] = []
    would_add: set[tuple[int, str, str]] = set()  # a dry run's new matches, across flushes

    def flush() -> None:
        nonlocal enqueued, new_matches
        if pending and args.dry_run:
            would_add.update(
                store.unmatched({(i.story_id, p.watchlist, p.revision) for i, p in pending})
            )
            new_matches = len(would_add)
        elif pending:
            added = store.add_matches(pending, now=utc_now())
            enqueued += added.deliveries
            new_matches += added.matches
        pending.clear()

    try:
        items: Iterator[StoredItem] = store.items(since=utc_before(args.since))
        stories = ((item, Document(item.title, item.body, item.source)) for item in items)
        progress = terminal_progress(sys.stderr, sys.stdout)
        for result in backtest(index, stories, only=only, progress=progress):
            if not result.hits:
                continue
            if progress is not None:
                progress.clear()
            stored = cast(StoredItem, result.id)  # the ids given to backtest above
            matched += 1
            names = ", ".join(hit.watchlist for hit in result.hits)
            print(f"{stored.id}\t{names}\t{terminal_line(stored.title)}")
            ingested = as_ingested(stored)
            pending.extend((ingested, p) for p in plan_matches(ingested, result.hits, watchlists))
            if len(pending) >= FLUSH_EVERY:
                flush()
        flush()
    finally:
        store.close()
    if args.dry_run:
        print(
            f"{matched} stored items match; {new_matches} would be new matches "
            "(dry run: nothing enqueued)",
            file=sys.stderr,
        )
    else:
        # A watch-list with `alert: digest` enqueues no alert: its digest collects the
        # match. Counted apart, so "0 alerts enqueued" does not read as "nothing done".
        print(
            f"{matched} stored items match; {enqueued} alerts enqueued, "
            f"{new_matches} new matches (digests collect those of digest watch-lists)",
            file=sys.stderr,
        )
    return 0
