"""One poller at a time in the pipeline's CPU-bound stages.

Polls run on a pool of threads so that slow servers overlap. Their CPU work (parsing a
feed, normalising its entries, story signatures, matching watch-lists, and on SQLite the
whole ingest) cannot overlap anyway: it is Python, under one interpreter lock. Left to
contend for that lock, ten pollers spent a third to a half more CPU than one doing the
same polls (200 feeds of 50 items), because every call into C code that lets go of it
(nh3, hashlib on a long text, numpy, each SQLite step) handed it to another poller, which
then had to hand it back. Holding ``CPU_WORK`` around those stages makes the other
pollers wait on it, asleep, instead; fewer of them hold a parsed feed in memory at once.

Nothing done while holding it may wait on the network, or on a lock whose holder might
want ``CPU_WORK``: that would stall, or deadlock, every poller. SQLite's in-process write
lock is fine (its holders outside an ingest never ask for ``CPU_WORK``). It is reentrant,
so a stage may call another (matching runs inside the ingest).
"""

from __future__ import annotations

import threading

CPU_WORK = threading.RLock()
