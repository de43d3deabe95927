"""`monitor replay`: re-match stored items, e.g. against a watch-list added today."""

from __future__ import annotations

import argparse
import sys

from monitor.commands._common import load, since_arg
from monitor.commands.match import selected_watchlists
from monitor.errors import MonitorError
from monitor.model import Document
from monitor.store import open_store
from monitor.text import utc_now
from monitor.watchlists import compile_watchlists
from monitor.watchlists.backtest import backtest, terminal_progress


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="re-match stored items against the watch-lists",
        description=(
            "Re-match the items stored in the last --since against the watch-lists (all, "
            "or those named by -w) and list what matches."
        ),
    )
    parser.add_argument(
        "--since", type=since_arg, required=True, help="items fetched this recently (7d)"
    )
    parser.add_argument(
        "-w", "--watchlist", action="append", metavar="NAME", help="only this watch-list"
    )
    parser.add_argument("--dry-run", action="store_true", help="list what matches; enqueue nothing")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load(args)
    if not args.dry_run:
        # The store has no public way yet to add a match to an item stored earlier; until
        # it has, replay only reports, rather than writing around the store's API.
        raise MonitorError("replay: enqueuing is not available yet; run with --dry-run")
    only = selected_watchlists(config, args.watchlist)
    index = compile_watchlists(config.watchlists, config.terms)
    store = open_store(config.monitor.database)
    try:
        items = store.items(since=utc_now() - args.since)
        stories = ((item.id, Document(item.title, item.body, item.source)) for item in items)
        matched = 0
        progress = terminal_progress(sys.stderr)
        for result in backtest(index, stories, only=only, progress=progress):
            if result.hits:
                matched += 1
                names = ", ".join(hit.watchlist for hit in result.hits)
                print(f"{result.id}\t{names}\t{result.document.title}")
    finally:
        store.close()
    print(f"{matched} stored items match (dry run: nothing enqueued)", file=sys.stderr)
    return 0
