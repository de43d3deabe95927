"""`monitor status`: sources' health, the outbox, the digests' windows."""

from __future__ import annotations

import argparse
from typing import Any

from monitor.commands._common import iso, load, print_json
from monitor.config import Config
from monitor.health import is_stale
from monitor.store import Store, open_store
from monitor.text import utc_now


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("status", help="health of sources, outbox and digests")
    parser.add_argument("--json", action="store_true", help="one JSON document")
    parser.set_defaults(func=run)


def collect_status(config: Config, store: Store) -> dict[str, Any]:
    """The status document (also served by the daemon's HTTP endpoint)."""
    now = utc_now()
    states = {state.name: state for state in store.source_states()}
    sources = []
    for source in config.monitor.sources:
        state = states.get(source.name)
        health = state.health if state else "new"
        stale = state is not None and is_stale(
            state, now=now, every=source.every, max_silence=source.max_silence
        )
        sources.append({
            "name": source.name,
            "type": source.type,
            "enabled": source.enabled,
            "healthy": health in ("healthy", "new") and not stale,
            "health": "stale" if stale and health == "healthy" else health,
            "failures": state.failures if state else 0,
            "last_error": state.last_error if state else None,
            "last_error_at": iso(state.last_error_at) if state else None,
            "last_success": iso(state.last_success) if state else None,
            "next_poll": iso(state.next_poll) if state else None,
            "items": state.items if state else 0,
        })
    windows = store.digest_windows()
    digests = [
        {
            "name": digest.name,
            "schedule": digest.schedule,
            "last_window_end": iso(windows[digest.name][0]) if digest.name in windows else None,
        }
        for digest in config.monitor.digests
    ]
    return {
        "sources": sources,
        "outbox": {**store.outbox_counts(now=now), "dead_letters": store.dead_letters()},
        "digests": digests,
    }


def run(args: argparse.Namespace) -> int:
    config = load(args)
    store = open_store(config.monitor.database)
    try:
        status = collect_status(config, store)
    finally:
        store.close()
    if args.json:
        print_json(status)
        return 0
    print(f"{'SOURCE':<20} {'HEALTH':<9} {'ITEMS':>6}  {'LAST SUCCESS':<21} {'NEXT POLL':<21} LAST ERROR")
    for s in status["sources"]:
        print(
            f"{s['name']:<20} {s['health']:<9} {s['items']:>6}  {s['last_success'] or '-':<21} "
            f"{s['next_poll'] or '-':<21} {(s['last_error'] or '')[:60]}"
        )
    outbox = status["outbox"]
    print(
        f"\noutbox: {outbox['pending']} pending ({outbox['due']} due), {outbox['sent']} sent, "
        f"{outbox['dead']} dead"
    )
    for dead in outbox["dead_letters"][:5]:
        print(f"  dead: {dead['key']} via {dead['channel']}: {dead['last_error']}")
    for digest in status["digests"]:
        print(f"digest {digest['name']} ({digest['schedule']}): last window ended "
              f"{digest['last_window_end'] or 'never'}")
    return 0
