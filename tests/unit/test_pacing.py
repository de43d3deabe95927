"""How many polls a pass runs at once: one while the CPU is busy, doubling while it waits."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import pytest

from monitor.pacing import BUSY, WINDOW, PacedPolls, Pacer

A_WINDOW = WINDOW * 1.001  # a window on a float clock, not a rounding short of one
T = TypeVar("T")


class FakeTime:
    """A wall clock and a process CPU clock that move only when told."""

    def __init__(self) -> None:
        self.wall = 100.0
        self.cpu = 5.0

    def clock(self) -> float:
        return self.wall

    def cpu_time(self) -> float:
        return self.cpu

    def spend(self, seconds: float, busy: float) -> None:
        """``seconds`` pass, ``busy`` of them on the CPU."""
        self.wall += seconds
        self.cpu += seconds * busy


def pacer(time: FakeTime, most: int = 10) -> Pacer:
    return Pacer(most, clock=time.clock, cpu=time.cpu_time)


def test_a_pass_that_keeps_the_cpu_busy_stays_at_one_poll() -> None:
    time = FakeTime()
    pace = pacer(time)
    widths = []
    for _ in range(20):
        time.spend(A_WINDOW, busy=0.9)
        widths.append(pace.look(running=pace.width))
    assert [1] * 20 == widths


def test_a_waiting_pass_doubles_its_polls_each_window_up_to_the_most() -> None:
    time = FakeTime()
    pace = pacer(time, most=10)
    widths = []
    for _ in range(6):
        time.spend(A_WINDOW, busy=0.05)
        widths.append(pace.look(running=pace.width))
    assert [2, 4, 8, 10, 10, 10] == widths


@pytest.mark.parametrize("busy", [BUSY + 0.001, 0.9])
def test_half_the_time_on_the_cpu_or_more_is_busy_enough(busy: float) -> None:
    time = FakeTime()
    pace = pacer(time)
    time.spend(A_WINDOW, busy=busy)
    assert 1 == pace.look(running=1)


def test_nothing_widens_before_a_window_has_passed() -> None:
    time = FakeTime()
    pace = pacer(time)
    time.spend(WINDOW / 2, busy=0.0)
    assert 1 == pace.look(running=1)
    time.spend(A_WINDOW / 2, busy=0.0)  # the whole window was idle: now it widens
    assert 2 == pace.look(running=1)


def test_idle_pollers_are_no_reason_to_add_more() -> None:
    """The end of a pass (fewer polls left than the width) is idle but not waiting."""
    time = FakeTime()
    pace = pacer(time)
    time.spend(A_WINDOW, busy=0.0)
    assert 2 == pace.look(running=1)
    time.spend(A_WINDOW, busy=0.0)
    assert 2 == pace.look(running=1)


def run_to_the_end(
    time: FakeTime, work: Callable[[str], T], names: list[str]
) -> tuple[PacedPolls[T], list[Future[T]]]:
    """A pass over ``names`` started by ``top_up``, once every poll has ended (each
    future done when its ``on_end`` runs); its polls' futures in the order they ended."""
    ended: list[Future[T]] = []
    all_ended = threading.Event()

    def on_end(future: Future[T]) -> None:
        assert future.done()
        ended.append(future)
        if len(ended) == len(names):
            all_ended.set()

    with ThreadPoolExecutor(10) as executor:
        polls = PacedPolls(executor, work, names, pacer(time), on_end)
        polls.top_up()
        assert all_ended.wait(30)
    return polls, ended


def test_polls_start_in_order_one_at_a_time_while_the_cpu_is_busy() -> None:
    time = FakeTime()
    names = [f"s{n}" for n in range(8)]
    started: list[str] = []
    running = 0
    most_at_once = 0
    guard = threading.Lock()

    def work(name: str) -> str:
        nonlocal running, most_at_once
        with guard:
            running += 1
            most_at_once = max(most_at_once, running)
            started.append(name)
        time.spend(A_WINDOW, busy=1.0)  # a poll that is all CPU
        with guard:
            running -= 1
        return name.upper()

    polls, _ = run_to_the_end(time, work, names)
    assert names == started
    assert 1 == most_at_once
    assert {name: name.upper() for name in names} == {
        name: future.result() for name, future in polls.futures.items()
    }


def test_polls_waiting_on_the_network_get_company_each_window() -> None:
    """Looks between poll ends (``pace`` calls top_up every WINDOW) widen a pass whose
    polls are all stuck waiting."""
    time = FakeTime()
    names = [f"s{n}" for n in range(12)]
    release = threading.Event()
    started: list[str] = []
    guard = threading.Lock()
    ended = iter(range(1, len(names) + 1))
    all_ended = threading.Event()

    def work(name: str) -> None:
        with guard:
            started.append(name)
        release.wait(30)

    def on_end(_future: Future[None]) -> None:
        if next(ended) == len(names):
            all_ended.set()

    def started_after_a_window() -> int:
        time.spend(A_WINDOW, busy=0.0)
        polls.top_up()
        return len(polls.futures)

    with ThreadPoolExecutor(10) as executor:
        polls = PacedPolls(executor, work, names, pacer(time, most=10), on_end)
        polls.top_up()
        try:
            counts = [started_after_a_window() for _ in range(5)]
        finally:
            release.set()
        assert all_ended.wait(30)
    assert [2, 4, 8, 10, 10] == counts  # the polls started by each look
    assert names == started  # the two left over ran as others ended
    assert all(future.done() for future in polls.futures.values())


def test_start_all_starts_every_poll_left_before_the_executor_shuts_down() -> None:
    """A pass cut short (an error, Ctrl-C) starts what is left and leaves the executor:
    polls ending during its shutdown start nothing more, and none is lost."""
    time = FakeTime()
    names = [f"s{n}" for n in range(12)]
    release = threading.Event()
    ended: list[str] = []

    def work(name: str) -> str:
        release.wait(30)
        return name

    with ThreadPoolExecutor(10) as executor:
        polls = PacedPolls(executor, work, names, pacer(time), lambda f: ended.append(f.result()))
        polls.top_up()
        assert 1 == len(polls.futures)  # busy or not, one to begin with
        polls.start_all()
        release.set()
    assert names == sorted(polls.futures, key=names.index)
    assert sorted(names) == sorted(ended)


def test_a_pass_one_poll_wide_runs_its_polls_on_one_thread() -> None:
    """A poller that ends a poll starts the next itself: quick polls are one thread's
    loop, not a hand-over to another of the executor's threads at every poll."""
    time = FakeTime()
    names = [f"s{n}" for n in range(6)]
    threads: list[int] = []

    def work(name: str) -> str:
        threads.append(threading.get_ident())
        time.spend(A_WINDOW, busy=1.0)
        return name

    polls, _ = run_to_the_end(time, work, names)
    assert 1 == len(set(threads))
    assert names == list(polls.futures)


def test_a_poll_that_raises_ends_its_future_with_the_error_and_the_pass_goes_on() -> None:
    time = FakeTime()
    names = ["a", "b", "c"]

    def work(name: str) -> str:
        time.spend(A_WINDOW, busy=1.0)
        if name == "b":
            raise RuntimeError("broken feed")
        return name

    polls, ended = run_to_the_end(time, work, names)
    shown = [f"error: {f.exception()}" if f.exception() else f.result() for f in ended]
    assert ["a", "error: broken feed", "c"] == shown
    with pytest.raises(RuntimeError):
        polls.futures["b"].result()


def test_an_on_end_that_raises_stops_no_poll() -> None:
    time = FakeTime()
    names = ["a", "b", "c"]
    ran: list[str] = []

    def work(name: str) -> str:
        time.spend(A_WINDOW, busy=1.0)
        ran.append(name)
        return name

    def on_end(_future: Future[str]) -> None:
        raise RuntimeError("a broken callback")

    with ThreadPoolExecutor(10) as executor:
        polls = PacedPolls(executor, work, names, pacer(time), on_end)
        polls.top_up()
    assert names == ran
    assert all(future.done() for future in polls.futures.values())
