"""How a poll takes its source's lease, and how a poll that brought nothing writes back.

A poll leases its source (so no other instance polls it meanwhile) and, when the feed
had nothing new (a 304, most polls), writes the source's new state, which ends the
lease. The daemon polls a source at a time, as each falls due: ``Leases`` makes each of
those a transaction of its own. A pass over every source at once (`monitor run --once`)
uses ``BatchedLeases``: a few hundred one-row transactions, by ten pollers in turn, cost
more than the polls they stood for.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta

from monitor.app import App
from monitor.config import FeedSourceConfig, SourceConfig
from monitor.store.repo import SourceState

# Sources leased, or quiet polls written back, per transaction in a pass. Twice the
# pollers: the next ten are leased while the last ten poll. A process that dies holds
# at most this many leases (plus those in flight) until they run out.
BATCH = 20
# After the fetch, a poll parses, matches and commits, taking its turns at the CPU
# (monitor.cpu) behind the other pollers. A lease allows this much for that; a dead
# instance's sources wait as long (plus a feed's timeout) for another to take them.
AFTER_FETCH = timedelta(seconds=15)


def lease_length(config: SourceConfig) -> timedelta:
    """How long a source is leased: as long as a poll of it may run, else a slow fetch
    (a feed's ``timeout`` is 30 s by default, its interval may be 10 s) outlives its
    lease and another instance polls the source meanwhile; and at least an interval."""
    fetch = config.timeout if isinstance(config, FeedSourceConfig) else timedelta(0)
    return max(config.every, fetch + AFTER_FETCH)


class Leases:
    """One transaction for each lease and each quiet poll's state."""

    def __init__(self, app: App) -> None:
        self.app = app

    def claim(self, name: str, *, now: datetime, force: bool) -> SourceState | None:
        """Source ``name`` leased for as long as its poll may run (``lease_length``: no
        instance takes a poll over while it could still be running): its state, or None
        if another instance holds it or (unless ``force``) it is not due."""
        return self._claim([name], now=now, force=force).get(name)

    def settle(self, state: SourceState) -> None:
        """Write a poll's new state when it brought no items, ending the lease."""
        self.app.store.save_source_state(state, owner=self.app.owner)

    def flush(self) -> None:
        """Write whatever ``settle`` has left to write."""

    def _claim(self, names: Sequence[str], *, now: datetime, force: bool) -> dict[str, SourceState]:
        until = {name: now + lease_length(self.app.source_configs[name]) for name in names}
        return self.app.store.claim_sources(until, self.app.owner, now=now, force=force)


class BatchedLeases(Leases):
    """For polls started in ``order``: the sources are leased BATCH at a time, ahead of
    their polls, and quiet polls' states written BATCH at a time (and at ``flush``).

    A process that dies loses the states not yet written: those sources keep their
    previous cursor and health and are polled again when their leases run out.
    """

    def __init__(self, app: App, order: Sequence[str]) -> None:
        super().__init__(app)
        self._order = list(order)
        self._position = {name: at for at, name in enumerate(self._order)}
        self._next = 0  # the first source in ``order`` not yet asked for
        self._leased: dict[str, SourceState] = {}
        self._settled: list[SourceState] = []
        self._lock = threading.Lock()

    def claim(self, name: str, *, now: datetime, force: bool) -> SourceState | None:
        with self._lock:
            at = self._position[name]
            if at >= self._next:  # pollers may ask a little out of order
                end = max(at + 1, self._next + BATCH)
                batch = self._order[self._next : end]
                self._leased.update(self._claim(batch, now=now, force=force))
                self._next = end
            return self._leased.pop(name, None)

    def settle(self, state: SourceState) -> None:
        with self._lock:
            self._settled.append(state)
            full = len(self._settled) >= BATCH
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            states, self._settled = self._settled, []
        if states:
            self.app.store.save_source_states(states, owner=self.app.owner)
