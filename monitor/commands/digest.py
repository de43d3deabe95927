"""`monitor digest [NAME] --now`: build and send a digest now."""

from __future__ import annotations

import argparse

from monitor.alerts.digest import run_digest
from monitor.commands._common import load_app
from monitor.commands.run import drain_outbox
from monitor.errors import ConfigError
from monitor.store.repo import DIGEST_LEASE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="the digest (default: every digest)")
    parser.add_argument(
        "--now",
        action="store_true",
        required=True,
        help="close the digest's window now and send it",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    app = load_app(args)
    try:
        names = [d.name for d in app.config.monitor.digests]
        if args.name and args.name not in names:
            raise ConfigError(
                f"no digest called {args.name!r} (have: {', '.join(names) or 'none'})",
                file=str(app.config.path),
            )
        for name in [args.name] if args.name else names:
            queued = run_digest(app, name)
            if queued is None:
                print(
                    f"digest {name}: not sent: its window closed less than"
                    f" {DIGEST_LEASE.total_seconds():g}s ago, or is closing elsewhere;"
                    " what came since goes in the next"
                )
            else:
                print(f"digest {name}: {queued} message(s) queued")
        report = drain_outbox(app)
    finally:
        app.close()
    print(f"delivered: {report.sent} sent, {report.failed} failed")
    return 1 if report.failed else 0
