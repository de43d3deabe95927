"""How many of a pass's polls run at once: more only while the pass waits more than it works.

Pollers are threads of one interpreter and take turns at its lock. Where feeds answer at
once (a server nearby, a 304 Not Modified), a poll is mostly Python work and a second
poller only queues for the lock: over 200 feeds served from the same machine, one poller
did a pass in less time, CPU and memory than ten. Where feeds are far away, a poll is
mostly a wait for the network, and pollers side by side overlap those waits.

So a pass (``PacedPolls``) starts one poll at a time, and each WINDOW in which the
process used the CPU for less than BUSY of the time while every poller was at work, it
doubles the polls it keeps running, up to its most: a pass over distant feeds reaches ten
pollers within a few windows, one over a nearby server stays at one or two.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from typing import Generic, TypeVar

import structlog

T = TypeVar("T")
log = structlog.get_logger("monitor.pacing")

WINDOW = 0.02  # seconds of a pass between looks at how busy it kept the CPU
BUSY = 0.5  # below this share of a window on the CPU, the pass is mostly waiting


class Pacer:
    """The number of polls to keep running, doubled after each window spent waiting.

    ``clock`` and ``cpu`` are the wall clock and the process's CPU time, in seconds.
    """

    def __init__(
        self,
        most: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        cpu: Callable[[], float] = time.process_time,
    ) -> None:
        self.width = 1
        self._most = most
        self._clock = clock
        self._cpu = cpu
        self._since = (clock(), cpu())

    def look(self, running: int) -> int:
        """The width now, with ``running`` polls running; a window that ended while all
        ``width`` of them ran and the CPU was mostly idle widens it."""
        now, used = self._clock(), self._cpu()
        elapsed = now - self._since[0]
        if elapsed < WINDOW:
            return self.width
        busy = (used - self._since[1]) / elapsed
        self._since = (now, used)
        if busy < BUSY and running >= self.width:
            self.width = min(self._most, self.width * 2)
        return self.width


class PacedPolls(Generic[T]):
    """``work(name)`` for each of ``names``, started in order on ``executor``, as many at
    once as ``pacer`` says; ``on_end`` is called with each future as it ends.

    ``top_up()`` starts what the width allows: as each poll ends, and every WINDOW in
    between, from ``pace()`` on a thread of its own (so a pass stuck on slow feeds widens
    even while its caller waits on something else, a mail server slow to answer).
    ``start_all()`` starts every poll left at once, as a pass cut short must.

    A poll is started by taking its name from the queue and making its future, under
    ``_lock``; a poller that ends a poll starts the next one itself, on its own thread,
    while the width allows. A job on the executor is a poller, not a poll: a pass of
    quick polls is then one thread's loop, not a hand-over to another thread at every
    poll (each hand-over woke a thread and passed the interpreter lock).
    """

    def __init__(
        self,
        executor: Executor,
        work: Callable[[str], T],
        names: Sequence[str],
        pacer: Pacer,
        on_end: Callable[[Future[T]], None],
    ) -> None:
        self.futures: dict[str, Future[T]] = {}
        self._executor = executor
        self._work = work
        self._pending = deque(names)
        self._pacer = pacer
        self._on_end = on_end
        self._running = 0
        self._lock = threading.Lock()
        self._all_started = threading.Event()

    def pace(self) -> None:
        """``top_up()`` now and every WINDOW until every poll has started."""
        self.top_up()
        while not self._all_started.wait(WINDOW):
            self.top_up()

    def top_up(self) -> None:
        with self._lock:
            started = self._start(self._pacer.look(self._running))
        self._submit(started)

    def start_all(self) -> None:
        """Every poll not started yet, started now (the executor queues them)."""
        with self._lock:
            started = self._start(len(self._pending) + self._running)
        self._submit(started)

    def _start(self, width: int) -> list[tuple[str, Future[T]]]:
        """The next polls started, while fewer than ``width`` run. Called under
        ``_lock``: a poll taken from the queue is started (its future made) before anyone
        else looks, and is submitted or run by the caller, so none is left unrun by the
        executor's shutdown after ``start_all``."""
        started = []
        while self._pending and self._running < width:
            name = self._pending.popleft()
            future = self.futures[name] = Future()
            self._running += 1
            started.append((name, future))
        if not self._pending:
            self._all_started.set()
        return started

    def _submit(self, started: list[tuple[str, Future[T]]]) -> None:
        for name, future in started:
            self._executor.submit(self._poller, name, future)

    def _poller(self, name: str, future: Future[T]) -> None:
        """Run the poll ``name``, then each next poll the width allows, until none is
        left for this poller; the rest of the polls a width widened by then allows go to
        other pollers."""
        next_poll: tuple[str, Future[T]] | None = (name, future)
        while next_poll is not None:
            name, future = next_poll
            try:
                future.set_result(self._work(name))
            except BaseException as exc:  # the future carries it, as an executor's would
                future.set_exception(exc)
            with self._lock:
                self._running -= 1
            self._ended(future)
            with self._lock:
                started = self._start(self._pacer.look(self._running))
            next_poll = started.pop(0) if started else None
            self._submit(started)

    def _ended(self, future: Future[T]) -> None:
        """``on_end(future)``; an error in it is logged, as a future's callback's is, and
        the poller goes on."""
        try:
            self._on_end(future)
        except Exception:
            log.exception("poll_end_callback_failed")
