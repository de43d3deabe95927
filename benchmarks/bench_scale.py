"""Scale-out benchmark: items/s and deliveries/s with 1, 2 and 4 ``monitor run`` instances
on one PostgreSQL database, polling 1,000 feeds on a loopback server.

    .venv/bin/python benchmarks/bench_scale.py [--feeds 1000] [--items 10] [--instances 1 2 4]

PostgreSQL is the server ``$MONITOR_TEST_POSTGRES`` names (default: this machine's,
``postgresql+psycopg://postgres@127.0.0.1:5432/test``); each run gets a fresh database
(see tests/pg.py), dropped afterwards.

Each run starts ``k`` instances together (tests/cluster.py: ``FeedFarm``, ``Instance``).
Every feed serves ``--items`` items, one in four mentioning the watched word, and is polled
once (interval 1h, no jitter); each match is POSTed to a loopback webhook receiver. Clocks
start at the first fetch the feed server sees, so start-up and migration are not counted.
The scratch database commits without waiting for the disk (``synchronous_commit = off``),
so the numbers show CPU and round trips, not this machine's fsync latency.

- items/s: items stored / time until the last one was stored (counted in the database);
- deliveries/s: alerts received / time until the last one arrived (polling included,
  as alerts cannot go out before their items are in);
- instance CPU s: user + system seconds the instances used, start-up included: with the
  wall times, it tells whether a run was bound by the instances or by the machine.

The baseline is the one-instance run of the same invocation; "x" columns are speed-ups.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from cluster import FeedFarm, Instance, cluster_config  # noqa: E402 - after the path
from pg import ENV, scratch_database  # noqa: E402
from servers import WebhookReceiver  # noqa: E402

from monitor.store import open_store  # noqa: E402
from monitor.store.repo import redact_url  # noqa: E402

DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEADLINE = 900.0  # seconds; a run that takes longer is broken, not slow


@dataclass(frozen=True)
class Run:
    instances: int
    items: int
    items_seconds: float
    deliveries: int
    deliveries_seconds: float
    repeats: int  # alerts received more than once (none expected: nobody is killed here)
    cpu_seconds: float  # user + system time of the instances, start-up included

    @property
    def items_rate(self) -> float:
        return self.items / self.items_seconds

    @property
    def deliveries_rate(self) -> float:
        return self.deliveries / self.deliveries_seconds


def time_until(condition: Callable[[], bool], what: str) -> float:
    """``time.monotonic()`` when ``condition()`` first held (checked every 50 ms)."""
    end = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > end:
            raise SystemExit(f"bench_scale: gave up waiting for {what}")
        time.sleep(0.05)
    return time.monotonic()


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(server: str, instances: int, feeds: int, per_feed: int) -> Run:
    cpu_before = children_cpu()
    with (
        scratch_database(server) as url,
        FeedFarm(feeds, per_round=per_feed) as farm,
        WebhookReceiver() as hooks,
        tempfile.TemporaryDirectory() as folder,
    ):
        items, matching = len(farm.items()), len(farm.items(matching=True))
        open_store(url).close()  # migrated before the clocks could start
        engine = create_engine(url)
        try:
            with ExitStack() as running:
                for n in range(instances):
                    config = cluster_config(
                        Path(folder),
                        n,
                        database=url,
                        farm=farm,
                        hook_url=hooks.url,
                        every="1h",
                        jitter="0s",
                    )
                    running.enter_context(Instance(config))

                def stored() -> bool:
                    with engine.connect() as connection:
                        count = connection.execute(text("SELECT count(*) FROM items"))
                        return bool(count.scalar_one() >= items)

                items_done = time_until(stored, "the items")
                hooks_done = time_until(lambda: len(set(hooks.ids())) >= matching, "the alerts")
        finally:
            engine.dispose()
        first_fetch = min(times[0] for times in farm.fetches() if times)
        ids = hooks.ids()
    return Run(
        instances=instances,
        items=items,
        items_seconds=items_done - first_fetch,
        deliveries=len(set(ids)),
        deliveries_seconds=hooks_done - first_fetch,
        repeats=len(ids) - len(set(ids)),
        cpu_seconds=children_cpu() - cpu_before,
    )


def table(runs: list[Run]) -> str:
    base = runs[0]
    lines = [
        "| instances | items | items/s | x | deliveries | deliveries/s | x | repeats "
        "| instance CPU s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r.instances} | {r.items} | {r.items_rate:.0f} "
            f"| {r.items_rate / base.items_rate:.2f} | {r.deliveries} "
            f"| {r.deliveries_rate:.0f} | {r.deliveries_rate / base.deliveries_rate:.2f} "
            f"| {r.repeats} | {r.cpu_seconds:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=10, help="items per feed")
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    server = os.environ.get(ENV, DEFAULT_SERVER)
    print(f"{args.feeds} feeds x {args.items} items, {os.cpu_count()} CPUs, {redact_url(server)}")
    runs = []
    for instances in args.instances:
        load = os.getloadavg()[0]  # other work on the machine skews a run: say so
        runs.append(run(server, instances, args.feeds, args.items))
        print(f"  {runs[-1]} (load average before: {load:.1f})", flush=True)
    print(table(runs))


if __name__ == "__main__":
    main()
