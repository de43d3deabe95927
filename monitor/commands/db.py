"""`monitor db upgrade`: apply schema migrations (also done at every start)."""

from __future__ import annotations

import argparse

from monitor.commands._common import load
from monitor.store import open_store
from monitor.store.migrate import current_revision


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    upgrade = actions.add_parser("upgrade", help="apply migrations")
    upgrade.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load(args)
    store = open_store(config.monitor.database)
    try:
        print(f"database at revision {current_revision(store.engine)}")
    finally:
        store.close()
    return 0
