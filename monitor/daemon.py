"""The daemon: APScheduler jobs rebuilt from config at every start and reload.

Jobs have stable ids (``source:<name>``, ``deliver``, ``digest:<name>``, ``housekeeping``),
coalesce and never overlap themselves. The job store is in memory: the config file is
the source of truth, and our own state (cursors, outbox, digest windows) lives in our
tables. SIGTERM/SIGINT drain and exit 0; SIGHUP reloads config and watch-lists, and an
invalid new config is refused while the old one keeps running.
"""

from __future__ import annotations

import signal
import threading
from datetime import UTC
from pathlib import Path
from types import FrameType

import structlog
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from monitor.alerts.digest import run_digest
from monitor.alerts.outbox import deliver_due
from monitor.app import App, build_app
from monitor.config import Config, load_config
from monitor.errors import MonitorError
from monitor.logging import register_secrets
from monitor.pipeline import poll_source
from monitor.text import utc_now

log = structlog.get_logger("monitor.daemon")

DRAIN_SECONDS = 8.0
HOUSEKEEPING_EVERY = 3600


class Daemon:
    """Owns the scheduler and the current App; swaps the App on reload."""

    def __init__(self, config: Config, *, config_path: Path | None = None) -> None:
        self.config_path = config_path or config.path
        self.app: App = build_app(config)
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
        )
        self.scheduler.add_listener(self._on_job_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
        self._stop = threading.Event()
        self._reload = threading.Event()

    # --- jobs ---------------------------------------------------------------------------

    def schedule(self) -> None:
        """(Re)create every job from the current config."""
        self.scheduler.remove_all_jobs()
        now = utc_now()
        config = self.app.config.monitor
        for name, source in self.app.source_configs.items():
            self.scheduler.add_job(
                self._poll,
                IntervalTrigger(seconds=source.every.total_seconds(), jitter=source.jitter_seconds),
                args=[name],
                id=f"source:{name}",
                next_run_time=now,
            )
        self.scheduler.add_job(
            self._deliver,
            IntervalTrigger(seconds=config.delivery.every.total_seconds()),
            id="deliver",
            next_run_time=now,
        )
        for digest in config.digests:
            self.scheduler.add_job(
                self._digest,
                CronTrigger.from_crontab(digest.schedule, timezone=digest.timezone or config.timezone),
                args=[digest.name],
                id=f"digest:{digest.name}",
            )
        self.scheduler.add_job(
            self._housekeeping, IntervalTrigger(seconds=HOUSEKEEPING_EVERY), id="housekeeping"
        )

    def _poll(self, name: str) -> None:
        app = self.app
        if name in app.sources:
            poll_source(app, name)

    def _deliver(self) -> None:
        deliver_due(self.app)

    def _digest(self, name: str) -> None:
        run_digest(self.app, name)
        deliver_due(self.app)

    def _housekeeping(self) -> None:
        self.app.store.optimize()

    def _on_job_event(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.warning("job_missed", job=event.job_id, scheduled=str(event.scheduled_run_time))
        else:
            log.error("job_failed", job=event.job_id, error=repr(event.exception))

    # --- lifecycle ----------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self._reload.set()
        else:
            self._stop.set()

    def reload(self) -> bool:
        """Load the config again; keep running the old one if the new one is invalid."""
        try:
            config = load_config(self.config_path)
            new_app = build_app(config)
        except MonitorError as exc:
            log.error("reload_refused", error=str(exc))
            return False
        register_secrets(config.secrets())
        old, self.app = self.app, new_app
        self.schedule()
        old.close()
        log.info("config_reloaded", sources=len(new_app.sources),
                 watchlists=len(config.watchlists))
        return True

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> int:
        """Run until SIGTERM or SIGINT; returns the exit code (0 on a clean stop)."""
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        self.schedule()
        self.scheduler.start()
        log.info("daemon_started", sources=len(self.app.sources),
                 watchlists=len(self.app.config.watchlists), owner=self.app.owner)
        try:
            while not self._stop.wait(0.5):
                if self._reload.is_set():
                    self._reload.clear()
                    self.reload()
        finally:
            self._shutdown()
        log.info("daemon_stopped")
        return 0

    def _shutdown(self) -> None:
        """Stop taking jobs; give running ones a few seconds. Anything abandoned is safe:
        polls commit in one transaction and claimed deliveries return when leases end."""
        self.scheduler.pause()
        waiter = threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": True},
                                  daemon=True)
        waiter.start()
        waiter.join(DRAIN_SECONDS)
        if waiter.is_alive():
            log.warning("drain_timed_out", seconds=DRAIN_SECONDS)
        self.app.close()
