"""How often a source usually brings news: the yardstick for calling it stale.

A weekly column polled every hour is not stale after a day of silence; a wire that
files every ten minutes may well be. The cadence is a moving average of the time
between polls that brought new items (each new gap weighs WEIGHT), kept with the
source's state; monitor.health.is_stale calls a source stale once it has been silent
for STALE_AFTER cadences (and never sooner than its fixed floor).
"""

from __future__ import annotations

from datetime import datetime

WEIGHT = 0.25
STALE_AFTER = 5


def next_cadence(cadence: float | None, last_news: datetime | None, now: datetime) -> float | None:
    """The cadence after news arrives at ``now``, the previous news having come at
    ``last_news`` (None: the first news, no gap to measure yet)."""
    if last_news is None:
        return cadence
    gap = max((now - last_news).total_seconds(), 0.0)
    return gap if cadence is None else cadence + WEIGHT * (gap - cadence)
