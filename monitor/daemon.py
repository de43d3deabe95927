"""The daemon: APScheduler jobs built from config at every start and reload.

Jobs have stable ids (``source:<name>``, ``deliver``, ``digest:<name>``,
``housekeeping``, ``heartbeat``, ``probe``), coalesce and never overlap themselves. The job store is
in memory: the config file is the source of truth, and our own state (cursors, outbox,
digest windows) lives in our tables. After each poll a source's job is moved to the
source's stored ``next_poll`` plus jitter, so backoff, Retry-After and max-age are kept
exactly and a poll never fires before its source is due; the interval trigger stays as
the fallback.

SIGTERM/SIGINT drain (running jobs get ``DRAIN_SECONDS``; whatever is abandoned is safe,
see ``_shutdown``) and exit 0. SIGHUP reloads config and watch-lists: jobs whose schedule
did not change keep their next run, and an invalid new config is refused while the old
one keeps running. The heartbeat job proves the scheduler ticks: it feeds /healthz and
systemd's watchdog.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

import structlog
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from apscheduler.util import undefined
from sqlalchemy.exc import SQLAlchemyError

from monitor import systemd
from monitor.alerts.cron import DigestTrigger
from monitor.alerts.digest import next_run, run_digest
from monitor.alerts.outbox import DeliveryReport, deliver_due
from monitor.app import App, build_app
from monitor.config import Config, HttpConfig, SourceConfig, load_config
from monitor.errors import MonitorError
from monitor.logging import register_secrets
from monitor.observability import (
    ERRORS,
    HEARTBEAT,
    MISSED,
    OVERLAPPED,
    POLL_LAG,
    Health,
    StatusServer,
    job_kind,
    record_deliveries,
    record_poll,
)
from monitor.pipeline import POLL_WORKERS, poll_source
from monitor.sources.feed import FeedSource
from monitor.text import utc_before, utc_now

log = structlog.get_logger("monitor.daemon")

DRAIN_SECONDS = 8.0  # SIGTERM to exit stays under 10 s, systemd's and Docker's patience
HOUSEKEEPING_EVERY = timedelta(hours=1)
HOUSEKEEPING_FIRST = timedelta(minutes=1)  # soon after start: restarts must not starve it
HEARTBEAT_SECONDS = 5.0
MISSED_BEATS = 3  # /healthz fails after this many heartbeats in a row did not happen
# A poll whose host has all its connections in use for longer than HOST_WAIT seconds
# (a slow host, not a busy moment) tries again HOST_BUSY_RETRY later (plus up to as much
# again), leaving its poller to other hosts' sources.
HOST_WAIT = 0.1
HOST_BUSY_RETRY = timedelta(seconds=2)
_rng = random.SystemRandom()


@dataclass(frozen=True, slots=True)
class _JobSpec:
    """A job as the config wants it; ``key`` says whether a running job must change."""

    func: Callable[..., Any]
    key: tuple[Any, ...]
    trigger: Callable[[], BaseTrigger]
    first_run: datetime | None  # None: when the trigger first fires
    args: tuple[Any, ...] = ()
    executor: str = "default"
    # How late a run may start: seconds, None (however late), or undefined (the
    # scheduler's default, 300 s).
    misfire_grace_time: Any = undefined


class Daemon:
    """Owns the scheduler and the current App; swaps the App on reload."""

    def __init__(
        self,
        config: Config,
        *,
        config_path: Path | None = None,
        reload_asked: threading.Event | None = None,
    ) -> None:
        """``reload_asked``: set by a SIGHUP that came while the daemon was starting."""
        self.config_path = config_path or config.path
        register_secrets(config.secrets())
        self.app: App = build_app(config)
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={
                "default": ThreadPoolExecutor(POLL_WORKERS),
                # Alerts and upkeep never queue behind a storm of slow polls, and the
                # heartbeat measures the scheduler, not how busy the pollers are.
                "outbox": ThreadPoolExecutor(2),
                "heartbeat": ThreadPoolExecutor(1),
                "probe": ThreadPoolExecutor(1),
            },
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
        )
        # The listener below logs job failures, misses and overlaps as structured events.
        logging.getLogger("apscheduler.executors").setLevel(logging.CRITICAL)
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
        self.scheduler.add_listener(
            self._on_job_event,
            EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES,
        )
        watchdog = systemd.watchdog_seconds()
        self.heartbeat_seconds = (
            min(HEARTBEAT_SECONDS, watchdog / 3) if watchdog else HEARTBEAT_SECONDS
        )
        self.abandoned = False  # the drain ran out of time with jobs still running
        self._stop = threading.Event()
        self._reload = reload_asked or threading.Event()
        self._keys: dict[str, tuple[Any, ...]] = {}
        self._planning = threading.Lock()
        self._apps = threading.Lock()  # guards the three below
        self._jobs_on: dict[int, int] = {}  # id(app) -> jobs running on that App
        self._retired: dict[int, App] = {}  # Apps a reload replaced, with jobs still on them
        self._accepting = True
        self._beat = time.monotonic()
        self._probing: float | None = None  # when the running probe started
        self._reachable = True
        self._ready = False
        self._server: StatusServer | None = None

    # --- jobs ---------------------------------------------------------------------------

    def schedule(self, wanted: dict[str, _JobSpec]) -> None:
        """Make the scheduler's jobs ``wanted``. A job whose schedule did not change keeps
        its next run."""
        for job_id in self._keys.keys() - wanted.keys():
            self.scheduler.remove_job(job_id)
        for job_id, spec in wanted.items():
            if self._keys.get(job_id) == spec.key:
                continue
            self.scheduler.add_job(
                spec.func,
                spec.trigger(),
                args=spec.args,
                id=job_id,
                executor=spec.executor,
                misfire_grace_time=spec.misfire_grace_time,
                # None would add the job paused: "undefined" lets the trigger decide.
                next_run_time=spec.first_run or undefined,
                replace_existing=True,
            )
        self._keys = {job_id: spec.key for job_id, spec in wanted.items()}

    def _wanted_jobs(self, app: App) -> dict[str, _JobSpec]:
        """The jobs ``app``'s config wants. A source starts when its stored state says it
        is due (now for a source never polled)."""
        now = utc_now()
        config = app.config.monitor
        due = {s.name: s.next_poll for s in app.store.source_states(item_counts=False)}
        jobs: dict[str, _JobSpec] = {}
        for name, source in app.source_configs.items():
            every, jitter = source.every.total_seconds(), source.jitter_seconds
            jobs[f"source:{name}"] = _JobSpec(
                self._poll,
                ("source", every, jitter),
                partial(IntervalTrigger, seconds=every, jitter=jitter),
                _jittered(max(now, due.get(name) or now), source),
                args=(name,),
            )
        delivery_every = config.delivery.every.total_seconds()
        jobs["deliver"] = _JobSpec(
            self._deliver,
            ("deliver", delivery_every),
            partial(IntervalTrigger, seconds=delivery_every),
            now,
            executor="outbox",
        )
        windows = app.store.digest_windows() if config.digests else {}
        for digest in config.digests:
            zone = digest.timezone or config.timezone
            # A firing missed while the daemon was down (its window ended before a
            # firing that has passed) runs now, once, not at the next firing a day later.
            window = windows.get(digest.name)
            missed = window is not None and next_run(digest, config.timezone, window[0]) <= now
            jobs[f"digest:{digest.name}"] = _JobSpec(
                self._digest,
                ("digest", digest.schedule, zone),
                partial(DigestTrigger, digest.schedule, zone),
                now if missed else None,
                args=(digest.name,),
                executor="outbox",
                # Late behind a long drain is better than skipped until the next firing.
                misfire_grace_time=None,
            )
        jobs["housekeeping"] = _JobSpec(
            self._housekeeping,
            ("housekeeping",),
            partial(IntervalTrigger, seconds=HOUSEKEEPING_EVERY.total_seconds()),
            now + HOUSEKEEPING_FIRST,
            executor="outbox",
        )
        jobs["heartbeat"] = _JobSpec(
            self._heartbeat,
            ("heartbeat", self.heartbeat_seconds),
            partial(IntervalTrigger, seconds=self.heartbeat_seconds),
            None,  # WATCHDOG=1 only after READY=1 (see _heartbeat)
            executor="heartbeat",
        )
        jobs["probe"] = _JobSpec(
            self._probe,
            ("probe", self.heartbeat_seconds),
            partial(IntervalTrigger, seconds=self.heartbeat_seconds),
            None,
            executor="probe",
        )
        return jobs

    @contextmanager
    def _current_app(self) -> Iterator[App]:
        """The App one job runs on. An App a reload replaced is closed when the last job
        on it ends, not under it: closed from the reloading thread, an SMTP channel wrote
        QUIT into a session still sending (the reload waited for that server, and the
        send failed)."""
        with self._apps:
            app = self.app
            self._jobs_on[id(app)] = self._jobs_on.get(id(app), 0) + 1
        try:
            yield app
        finally:
            with self._apps:
                left = self._jobs_on.pop(id(app)) - 1
                if left:
                    self._jobs_on[id(app)] = left
                retired = None if left else self._retired.pop(id(app), None)
            if retired is not None:
                retired.close()
                log.debug("old_config_closed")

    def _retire(self, app: App) -> None:
        """Close ``app``, which a reload replaced, now or when its last job ends."""
        with self._apps:
            if self._jobs_on.get(id(app)):
                self._retired[id(app)] = app
                return
        app.close()

    def _poll(self, name: str) -> datetime:
        """One poll; returns when it started (the listener measures lag with it)."""
        with self._current_app() as app:
            return self._poll_on(app, name)

    def _poll_on(self, app: App, name: str) -> datetime:
        started = utc_now()
        if name not in app.sources:  # removed by a reload while this run was queued
            return started
        source = app.sources[name]
        turn_at_host = (
            source.host_turn(app.store.source_state(name).cursor, HOST_WAIT)
            if isinstance(source, FeedSource)
            else None
        )
        with turn_at_host or nullcontext(True) as turn:
            if not turn:
                log.debug("poll_deferred_host_busy", source=name)
                later = HOST_BUSY_RETRY * (1 + _rng.random())
                self._plan(f"source:{name}", started + later)
                return started
            clock = time.monotonic()
            outcome = poll_source(app, name, now=started)
        record_poll(outcome, time.monotonic() - clock)
        if outcome.next_poll is not None:
            self._plan_next_poll(app, name, outcome.next_poll)
        if outcome.deliveries:
            self._plan("deliver", utc_now())  # instant alerts go now, not at the next tick
        return started

    def _plan_next_poll(self, app: App, name: str, when: datetime) -> None:
        """Plan a source's next poll at ``when``, which ``app``'s config set. A reload that
        changed the source while this poll ran has a new interval for it: the next poll
        comes no later than one of those from now (a removed source is not planned)."""
        source = self.app.source_configs.get(name)
        if source is None:
            return
        if source != app.source_configs.get(name):
            when = min(when, utc_now() + source.every)
        self._plan(f"source:{name}", _jittered(when, source))

    def _plan(self, job_id: str, when: datetime) -> None:
        with self._planning:
            # The scheduler's shutdown holds its job store lock while it waits for running
            # jobs: a job that asked for that lock then would never finish.
            if not self._accepting:
                return
            with contextlib.suppress(JobLookupError):  # a reload removed the source meanwhile
                self.scheduler.modify_job(job_id, next_run_time=when)

    def _deliver(self) -> None:
        """Batches until one comes back short, so a backlog drains in one tick; a stop
        request ends it between batches."""
        with self._current_app() as app, structlog.contextvars.bound_contextvars(job="deliver"):
            while not self._stop.is_set():
                report = _deliver_batch(app, self._stop)
                if report.handled < app.config.monitor.delivery.batch:
                    break

    def _digest(self, name: str) -> None:
        with (
            self._current_app() as app,
            structlog.contextvars.bound_contextvars(job=f"digest:{name}"),
        ):
            run_digest(app, name)
            _deliver_batch(app, self._stop)

    def _housekeeping(self) -> None:
        """Retention, then SQLite upkeep."""
        with (
            self._current_app() as app,
            structlog.contextvars.bound_contextvars(job="housekeeping"),
        ):
            store, retention = app.store, app.config.monitor.retention
            if retention is not None:
                pruned = store.prune(utc_before(retention))
                log.info("retention_pruned", before_days=retention.days, **pruned)
            log.info("store_optimized", vacuumed=store.optimize())

    def _heartbeat(self) -> None:
        self._beat = time.monotonic()
        HEARTBEAT.set_to_current_time()
        if self._ready:  # a beat due before READY=1 went out (a slow start) waits for it
            systemd.watchdog()

    def _probe(self) -> None:
        """Whether the database answers; a job of its own, so that a connection hanging on
        a partitioned network stops neither the heartbeat nor systemd's watchdog."""
        self._probing = time.monotonic()
        reachable = self.app.store.ping()
        self._probing = None
        if reachable != self._reachable:
            if reachable:
                log.info("store_reachable")
            else:
                log.error("store_unreachable")
        self._reachable = reachable

    @property
    def _store_ok(self) -> bool:
        """The database answered the last probe, and the current one is not hanging."""
        since = self._probing
        hanging = since is not None and time.monotonic() - since > self._patience
        return self._reachable and not hanging

    @property
    def _patience(self) -> float:
        """How long a heartbeat or a probe may be overdue before /healthz fails."""
        return self.heartbeat_seconds * MISSED_BEATS

    def _on_job_event(self, event: JobExecutionEvent | JobSubmissionEvent) -> None:
        job = event.job_id
        if isinstance(event, JobSubmissionEvent):
            # Routine when the poll workers are busy or the outbox drains a backlog; a
            # line per occurrence would flood the log exactly when it is busiest.
            OVERLAPPED.labels(job_kind(job)).inc()
            log.debug("job_still_running", job=job)
        elif event.code == EVENT_JOB_EXECUTED:
            if isinstance(event.retval, datetime):
                POLL_LAG.observe(
                    max(0.0, (event.retval - event.scheduled_run_time).total_seconds())
                )
        elif event.code == EVENT_JOB_MISSED:
            MISSED.labels(job_kind(job)).inc()
            log.warning("job_missed", job=job, scheduled=event.scheduled_run_time.isoformat())
        else:
            ERRORS.labels("job").inc()
            log.error("job_failed", job=job, exc_info=event.exception)

    # --- probes (the HTTP endpoint asks these) --------------------------------------------

    @property
    def http_address(self) -> tuple[str, int] | None:
        """Where the HTTP endpoint listens (its port when the config asked for port 0)."""
        return self._server.address if self._server is not None else None

    def health(self) -> Health:
        """Alive: the scheduler runs its heartbeat on time and the store answers."""
        age = time.monotonic() - self._beat
        ticking = self.scheduler.running and age <= self._patience
        return Health(
            ticking and self._store_ok,
            {
                "scheduler": "ok" if ticking else "missed ticks",
                "heartbeat_age_seconds": round(age, 1),
                "store": "ok" if self._store_ok else "unreachable",
            },
        )

    def readiness(self) -> Health:
        """Ready: started, not draining, and the store answers."""
        if self._stop.is_set():
            return Health(False, {"state": "draining"})
        if not self._ready:
            return Health(False, {"state": "starting"})
        return Health(self._store_ok, {"state": "running", "sources": len(self.app.sources)})

    # --- lifecycle ----------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self._reload.set()
        else:
            self._stop.set()

    def reload(self) -> bool:
        """Load the config again; keep running the old one if the new one is invalid."""
        systemd.reloading()
        new_app: App | None = None
        try:
            config = load_config(self.config_path)
            new_app = build_app(config)
            wanted = self._wanted_jobs(new_app)
            http = config.monitor.http
            server = self._server
            if http != self.app.config.monitor.http:
                server = self._listen(http)  # before the swap: a busy port refuses it all
        except (MonitorError, SQLAlchemyError, OSError) as exc:
            # OSError: a file or folder the new config names cannot be read or made.
            if new_app is not None:
                new_app.close()
            log.error("reload_refused", error=str(exc))
            systemd.ready(self._status_line())
            return False
        register_secrets(config.secrets())
        new_app.take_over(self.app)
        with self._apps:
            old, self.app = self.app, new_app
        self.schedule(wanted)
        if server is not self._server:
            if self._server is not None:
                self._server.close()
            self._server = server
            if server is not None:
                server.start()
        self._retire(old)
        log.info("config_reloaded", sources=len(new_app.sources), watchlists=len(config.watchlists))
        systemd.ready(self._status_line())
        return True

    def _listen(self, http: HttpConfig | None) -> StatusServer | None:
        """The endpoint ``http`` asks for, bound but not serving yet."""
        return None if http is None else StatusServer(http, self, lambda: self.app.store)

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> int:
        """Run until SIGTERM or SIGINT (or ``stop``); returns the exit code, 0 when clean.

        Signals are handled when running in the main thread (tests may run it elsewhere).
        """
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(signum, self._on_signal)
        self.schedule(self._wanted_jobs(self.app))
        self._server = self._listen(self.app.config.monitor.http)
        self._beat = time.monotonic()
        self.scheduler.start()
        if self._server is not None:
            self._server.start()
        systemd.ready(self._status_line())
        self._ready = True
        log.info(
            "daemon_started",
            sources=len(self.app.sources),
            watchlists=len(self.app.config.watchlists),
            owner=self.app.owner,
            host=socket.gethostname(),
            pid=os.getpid(),
        )
        try:
            while not self._stop.wait(0.2):
                if self._reload.is_set():
                    self._reload.clear()
                    self.reload()
        finally:
            self._shutdown()
        log.info("daemon_stopped", abandoned=self.abandoned)
        return 0

    def _status_line(self) -> str:
        return f"polling {len(self.app.sources)} sources"

    def _shutdown(self) -> None:
        """Stop taking jobs; give running ones ``DRAIN_SECONDS``. Anything abandoned is
        safe: a poll commits in one transaction, and a claimed delivery comes back when
        its lease ends (resent under the same Message-ID / webhook-id)."""
        systemd.stopping()
        log.info("daemon_draining", seconds=DRAIN_SECONDS)
        with self._planning:
            self._accepting = False
        self.scheduler.pause()
        waiter = threading.Thread(
            target=self.scheduler.shutdown,
            kwargs={"wait": True},
            name="monitor-drain",
            daemon=True,
        )
        waiter.start()
        waiter.join(DRAIN_SECONDS)
        self.abandoned = waiter.is_alive()
        if self.abandoned:
            log.warning("drain_timed_out", seconds=DRAIN_SECONDS)
        if self._server is not None:
            self._server.close()
        if not self.abandoned:
            self.app.close()


def _deliver_batch(app: App, stop: threading.Event) -> DeliveryReport:
    """One batch of due deliveries, each attempt's outcome counted in the metrics: those
    made before an error too (the batch's report is filled as it goes). A stop request
    ends it between two deliveries."""
    report = DeliveryReport()
    try:
        deliver_due(app, report=report, stop=stop)
    finally:
        record_deliveries(report)
    return report


def _jittered(when: datetime, source: SourceConfig) -> datetime:
    """``when`` plus up to the source's jitter: many sources due together spread out."""
    return when + timedelta(seconds=_rng.uniform(0, source.jitter_seconds))
