"""The daemon with many feeds on one busy host: its pollers go to other hosts meanwhile."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from daemonkit import DEADLINE, DaemonRun, wait_for
from feedserver import Feed, FeedServer, Handler, rss

from monitor.sources.http import HttpPool


def test_a_busy_host_does_not_hold_the_pollers_other_hosts_need(tmp_path: Path) -> None:
    """Twelve feeds on one host, all due at once, and a feed on another host due a moment
    later. The busy host answers nobody until the other host has been polled. Pollers
    that waited for the busy host's four connections would all be taken (ten of them),
    the other feed would wait behind them, and the first four polls would end in 503s;
    a poll that finds the host busy is put off instead, and every source ends healthy,
    never more than four requests at the busy host at once."""
    per_host = HttpPool.shared().per_host
    lock = threading.Condition()
    in_flight = {"now": 0, "most": 0}
    other_polled = threading.Event()

    def busy(handler: Handler) -> None:
        with lock:
            in_flight["now"] += 1
            in_flight["most"] = max(in_flight["most"], in_flight["now"])
            lock.notify_all()
        answered = other_polled.wait(DEADLINE)
        time.sleep(0.05)  # room for a request over the limit to arrive
        with lock:
            in_flight["now"] -= 1
        if answered:
            Feed(rss(("b1", "Pact extended", "GSOMIA stays.")))(handler)
        else:
            handler.answer(503, b"", {})

    def other(handler: Handler) -> None:
        # The other feed's jitter may make it due before the busy host's first requests
        # have all arrived (under load they trickle in): then the busy host would never
        # see per_host at once. Answer once it has them (or at the deadline, and fail).
        with lock:
            lock.wait_for(lambda: in_flight["now"] >= per_host, DEADLINE)
        Feed(rss(("o1", "Talks resume", "GSOMIA talks.")))(handler)
        other_polled.set()

    busy_names = [f"busy{n}" for n in range(3 * per_host)]
    with FeedServer() as crowded, FeedServer() as elsewhere:
        for name in busy_names:
            crowded.routes[f"/{name}"] = busy
        elsewhere.routes["/other"] = other
        sources = "".join(
            f"  - {{name: {name}, type: feed, url: '{crowded.url('/' + name)}', every: 1h, "
            "jitter: 0s}\n"
            for name in busy_names
        )
        sources += (
            f"  - {{name: other, type: feed, url: '{elsewhere.url('/other')}', every: 1h, "
            "jitter: 1s}\n"
        )
        config = f"""
database: sqlite:///var/monitor.db
sources:
{sources}watchlists: []
channels:
  box: {{type: maildir, path: mail, to: [desk@example.org]}}
http: {{port: 0}}
"""
        with DaemonRun(tmp_path, config) as run:
            states = wait_for(
                lambda: (
                    (found := {s.name: s for s in run.daemon.app.store.source_states()})
                    and all(
                        name in found and found[name].last_attempt is not None
                        for name in [*busy_names, "other"]
                    )
                    and found
                ),
                "every source to be polled",
            )
    assert {name: "healthy" for name in [*busy_names, "other"]} == {
        name: state.health for name, state in states.items()
    }
    assert per_host == in_flight["most"]
