"""`monitor items`: the stored items, as a list or JSON lines."""

from __future__ import annotations

import argparse

from monitor.commands._common import iso, load, print_json, since_arg
from monitor.errors import ConfigError
from monitor.store import open_store
from monitor.text import terminal_line, utc_before


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", help="only this source")
    parser.add_argument("--since", type=since_arg, help="only items fetched this recently (1d)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many")
    parser.add_argument("--json", action="store_true", help="JSON lines")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load(args)
    store = open_store(config.monitor.database)
    since = utc_before(args.since) if args.since is not None else None
    found = 0
    try:
        for item in store.items(source=args.source, since=since, limit=args.limit):
            found += 1
            if args.json:
                print_json(
                    {
                        "id": item.id,
                        "source": item.source,
                        "guid": item.key,
                        "story": item.story_id,
                        "url": item.url,
                        "title": item.title,
                        "published": iso(item.published),
                        "fetched": iso(item.fetched_at),
                    }
                )
            else:
                source, title = terminal_line(item.source), terminal_line(item.title)
                print(f"{iso(item.published)}  {source:<16} {title}")
    finally:
        store.close()
    configured = {source.name for source in config.monitor.sources}
    if args.source and not found and args.source not in configured:
        # A removed source's items stay listed by name; a typo is not left silent.
        known = ", ".join(sorted(configured))
        raise ConfigError(f"unknown source {args.source!r} (known: {known})")
    return 0
