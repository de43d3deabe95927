"""Three ``monitor run`` instances on one PostgreSQL database (a private one, see tests/pg.py)
poll 200 feeds on a loopback server and alert a loopback webhook receiver; one instance is
SIGKILLed while the second round of news is in flight.

Every matching item arrives, with one webhook-id each. The id repeats only for an alert
the killed instance had sent before it could record it (the id is how a receiver drops
the repeat), and no feed is fetched twice within one interval across the cluster.
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import ExitStack
from itertools import pairwise
from pathlib import Path

import pytest
from cluster import FeedFarm, Instance, cluster_config, wait_until
from servers import WebhookReceiver, new_secret

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

FEEDS = 200
INSTANCES = 3
EVERY = 5.0  # seconds between polls of one feed


def test_three_instances_one_killed_alert_once_and_poll_once_per_interval(
    postgres_url: str, tmp_path: Path
) -> None:
    secret = new_secret()
    with FeedFarm(FEEDS) as farm, WebhookReceiver(secret) as hooks, ExitStack() as running:
        configs = [
            cluster_config(
                tmp_path,
                n,
                database=postgres_url,
                farm=farm,
                hook_url=f"{hooks.url}/{n}",  # the path tells which instance sent it
                every=f"{EVERY:g}s",
                secret=secret,
            )
            for n in range(INSTANCES)
        ]
        instances = [running.enter_context(Instance(config)) for config in configs]
        *survivors, victim = instances

        def delivered() -> set[str]:
            return {hook.json()["item"]["guid"] for hook in hooks.received()}

        def all_delivered() -> bool:
            return delivered() >= farm.items(matching=True)

        def every_feed_polled(since: float) -> None:
            """Half the feeds have no matching item in a round: their alerts do not tell."""
            wait_until(lambda: farm.all_fetched_since(since), "a poll of every feed")

        try:
            started = time.monotonic()
            wait_until(all_delivered, "the first round's alerts")
            every_feed_polled(started)
            released = farm.release()
            wait_until(lambda: any("-r1-" in guid for guid in delivered()), "the second round")
            victim.kill()
            wait_until(all_delivered, "the second round's alerts after the kill")
            every_feed_polled(released)
            released = farm.release()
            wait_until(all_delivered, "the third round's alerts")
            every_feed_polled(released)
            assert [0] * len(survivors) == [survivor.stop() for survivor in survivors]
        except BaseException:
            print("\n\n".join(f"{i.log.name}:\n{i.tail()}" for i in instances))
            raise

    received = hooks.received()
    assert farm.items(matching=True) == {hook.json()["item"]["guid"] for hook in received}
    senders: dict[str, list[str]] = defaultdict(list)
    for hook in received:
        senders[hook.id].append(hook.path)
    assert len(farm.items(matching=True)) == len(senders)
    victim_path = f"/hook/{INSTANCES - 1}"
    assert {} == {
        key: paths for key, paths in senders.items() if len(paths) > 1 and victim_path not in paths
    }

    fetches = farm.fetches()
    assert all(len(times) >= 3 for times in fetches)  # a poll per round at least
    # Fetches trail the claims the lease decides on by a request's latency; a feed polled
    # twice for one interval would show a gap near zero.
    too_close = {
        feed: [round(later - earlier, 2) for earlier, later in pairwise(times)]
        for feed, times in enumerate(fetches)
        if any(later - earlier < EVERY / 2 for earlier, later in pairwise(times))
    }
    assert {} == too_close
