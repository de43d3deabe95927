"""`monitor deliveries retry [--dead]`: re-queue failed deliveries now."""

from __future__ import annotations

import argparse

from monitor.commands._common import load
from monitor.store import open_store
from monitor.text import counted, utc_now


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    retry = actions.add_parser("retry", help="make failed deliveries due now")
    retry.add_argument("--dead", action="store_true", help="re-queue dead letters instead")
    retry.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load(args)
    store = open_store(config.monitor.database)
    try:
        count = store.requeue(dead=args.dead, now=utc_now())
    finally:
        store.close()
    print(f"{counted(count, 'delivery', 'deliveries')} re-queued")
    return 0
