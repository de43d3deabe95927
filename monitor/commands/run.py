"""`monitor run`: the daemon; `monitor run --once`: one pass over everything, then exit."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import chain, count, zip_longest
from urllib.parse import urlsplit

from monitor.alerts.outbox import DeliveryReport, deliver_due
from monitor.app import App
from monitor.commands._common import load, load_app
from monitor.health import BACKING_OFF, backing_off, held_until
from monitor.leases import BatchedLeases
from monitor.logging import masked
from monitor.pacing import PacedPolls, Pacer
from monitor.pipeline import POLL_WORKERS, PollOutcome, poll_source
from monitor.text import counted, utc_now

MAX_DELIVERY_ROUNDS = 1000
DELIVERY_PAUSE = 1.0  # seconds between looks at the outbox while sources are polled


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--once",
        action="store_true",
        help="poll every source once, deliver everything due, print a summary and exit "
        "(exit 1 if a source or a delivery failed); a source a server asked to wait "
        "(Retry-After, max-age) or backing off after failures waits, unless --force",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="with --once: poll even the sources that would wait",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.once:
        return run_daemon(args)
    app = load_app(args)
    try:
        outcomes, report = run_once(app, force=args.force)
    finally:
        app.close()
    if app.config.monitor.summary:
        print(masked(summary(outcomes, report)))  # its errors may name a secret
    failed = any(not outcome.ok for outcome in outcomes) or report.failed > 0
    return 1 if failed else 0


def run_daemon(args: argparse.Namespace) -> int:
    """The daemon until SIGTERM/SIGINT. If the drain ran out of time, exit at once: the
    abandoned jobs are safe to lose (see Daemon._shutdown), and the interpreter would
    otherwise wait for their threads."""
    # A SIGHUP while the daemon starts (migrations, a large config) would end it: until
    # the daemon takes the signals over, one only asks for a reload once it runs.
    reload_asked = threading.Event()
    signal.signal(signal.SIGHUP, lambda _signum, _frame: reload_asked.set())
    from monitor.daemon import Daemon

    daemon = Daemon(load(args), config_path=args.config, reload_asked=reload_asked)
    code = daemon.run()
    if daemon.abandoned:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def run_once(app: App, *, force: bool = False) -> tuple[list[PollOutcome], DeliveryReport]:
    """Every source polled now, whatever its interval (unless ``force``, not one a
    server asked to wait or one backing off after failures: run from cron, this must be
    as polite as the daemon), as the daemon polls: up to POLL_WORKERS at a time, as many
    as the pass needs to overlap slow servers (monitor.pacing), while alerts go out (a
    mail server's answers are waited for while the next feeds parse); then the outbox
    drained of what is due.

    The outbox is looked at when a poll has queued alerts (each poll says so as it
    ends), not on every poll's end: waiting on hundreds of futures at once, again after
    each one ends, cost more than the polls that find nothing new. Sources are leased,
    and unchanged feeds' states written, a batch at a time (monitor.leases).
    """
    report = DeliveryReport()
    look = threading.Event()  # the outbox may hold something due
    look.set()  # alerts an earlier run left due
    all_polled = threading.Event()
    held = {} if force else held_sources(app)
    order = [name for name in hosts_in_turn(app) if name not in held]
    leases = BatchedLeases(app, order)
    ended = count(1)

    def poll(name: str) -> PollOutcome:
        return poll_source(app, name, force=True, leases=leases)

    def poll_ended(done: Future[PollOutcome]) -> None:
        if next(ended) == len(order):
            all_polled.set()
            look.set()  # to stop waiting; the drain below takes the rest
        elif done.exception() is None and done.result().deliveries:
            look.set()

    try:
        with ThreadPoolExecutor(POLL_WORKERS, thread_name_prefix="poll") as pool:
            polls = PacedPolls(pool, poll, order, Pacer(POLL_WORKERS), poll_ended)
            # Widens the pass even while this thread waits on a channel slow to answer.
            pacing = threading.Thread(target=polls.pace, name="poll-pacing", daemon=True)
            pacing.start()
            if not order:
                all_polled.set()
            try:
                while not all_polled.is_set():
                    if look.wait(DELIVERY_PAUSE):
                        look.clear()
                        batch = deliver_due(app)
                        report.add(batch)
                        if batch.handled:  # some went out: more may be due
                            look.set()
            except BaseException:
                # Every poll left starts, and ends before the error goes up: a source
                # leased in a batch ahead (monitor.leases) is never left unpolled.
                polls.start_all()
                raise
            finally:
                pacing.join()
    finally:
        leases.flush()  # the quiet polls' states not yet written
    report.add(drain_outbox(app))
    outcomes = {name: future.result() for name, future in polls.futures.items()} | held
    return [outcomes[name] for name in app.sources], report


def held_sources(app: App) -> dict[str, PollOutcome]:
    """The sources that must wait (see monitor.health.held_until), as outcomes: one
    backing off after failures counts as failed (its last error), so a pass run from
    cron keeps exiting 1 while a source is broken."""
    now = utc_now()
    held = {}
    for state in app.store.waiting_source_states(now=now, backing_off=BACKING_OFF):
        until = held_until(state, now=now)
        if until is None or state.name not in app.sources:
            continue
        failing = backing_off(state)
        error = f"backing off after {counted(state.failures, 'failure')}: {state.last_error}"
        held[state.name] = PollOutcome(
            state.name,
            ok=not failing,
            skipped=True,
            next_poll=until,
            error=error if failing else None,
        )
    return held


def hosts_in_turn(app: App) -> list[str]:
    """The sources, taking each host's in turn (in config order within a host).

    A poller waiting for one of a host's few connections (see monitor.sources.http) holds
    its thread; in config order, a dozen feeds of one site would take every poller and
    keep the other sites' feeds waiting behind them.
    """
    from monitor.sources.feed import FeedSource  # loaded already if a feed is configured

    cursors = {state.name: state.cursor for state in app.store.source_states(item_counts=False)}
    hosts: dict[str, list[str]] = {}
    for name, source in app.sources.items():
        # Where the poll goes: a feed that moved is polled at its new host.
        url = source.next_url(cursors.get(name, {})) if isinstance(source, FeedSource) else ""
        hosts.setdefault(urlsplit(url).netloc, []).append(name)
    turns = chain.from_iterable(zip_longest(*hosts.values()))
    return [name for name in turns if name is not None]


def drain_outbox(app: App) -> DeliveryReport:
    """Deliver batches until nothing due is left (failures and holds are rescheduled,
    so they are not due again in this drain)."""
    total = DeliveryReport()
    for _ in range(MAX_DELIVERY_ROUNDS):
        batch = deliver_due(app)
        total.add(batch)
        if not batch.handled:
            break
    return total


def summary(outcomes: list[PollOutcome], report: DeliveryReport) -> str:
    """A few lines for a person: per source, per watch-list, deliveries."""
    lines = []
    for outcome in outcomes:
        if outcome.skipped and outcome.next_poll:
            until = outcome.next_poll.isoformat(timespec="seconds")
            why = outcome.error or "its server asked to wait"
            lines.append(f"{outcome.source}: waits until {until} ({why}; --force polls it)")
        elif outcome.skipped:
            lines.append(f"{outcome.source}: skipped (not due, or another instance polls it)")
        elif outcome.ok:
            lines.append(
                f"{outcome.source}: {outcome.new} new, {outcome.updated} updated, "
                f"{outcome.matches} matches"
            )
        else:
            lines.append(f"{outcome.source}: FAILED: {outcome.error}")
    watchlists = Counter(w for outcome in outcomes for w in outcome.matched_watchlists)
    if watchlists:
        lines.append("matched: " + ", ".join(f"{w} ({n})" for w, n in sorted(watchlists.items())))
    else:
        lines.append("matched: nothing new")
    delivered = f"delivered: {report.sent} sent"
    if report.retried:
        delivered += f", {report.retried} to retry"
    if report.dead:
        delivered += f", {report.dead} dead"
    if report.held:
        delivered += f", {report.held} held (quiet hours or rate cap)"
    lines.append(delivered)
    lines.extend(f"  {error}" for error in report.errors[:10])
    return "\n".join(lines)
