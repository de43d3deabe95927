"""The delivery worker: claim due outbox rows, render, send, and record the outcome.

A row is marked sent only after the channel accepted it. A transient failure retries
with exponential backoff plus jitter (capped); a permanent one, or too many attempts,
makes it a dead letter with the reason. Claims are leases, so a crashed worker's rows
come back by themselves. Quiet hours and rate caps (noise.py) hold a row before it is
rendered, without counting an attempt.

After a transient failure, the rest of that channel's rows in the batch wait for the same
retry time without being tried: a server that is down or slow costs one timeout per
batch, not one per row.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from monitor.alerts.digest import digest_view
from monitor.alerts.noise import NoiseControl
from monitor.alerts.render import AlertView
from monitor.app import App
from monitor.errors import (
    DeliveryError,
    PermanentDeliveryError,
    RenderError,
    TransientDeliveryError,
)
from monitor.health_alerts import health_message
from monitor.model import Message
from monitor.observability import record_delivery
from monitor.store.repo import DeliveryJob
from monitor.text import utc_now

log = structlog.get_logger("monitor.outbox")


@dataclass(slots=True)
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    held: int = 0  # by quiet hours or a rate cap: not a failure
    errors: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return self.retried + self.dead

    def add(self, other: DeliveryReport) -> None:
        self.sent += other.sent
        self.retried += other.retried
        self.dead += other.dead
        self.held += other.held
        self.errors.extend(other.errors)


def retry_delay(
    attempts: int,
    *,
    base: timedelta,
    cap: timedelta,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> timedelta:
    """Exponential backoff with full jitter in [50%, 100%]; a server's Retry-After is a floor."""
    rng = rng or random.SystemRandom()
    ceiling = min(base * (2 ** min(attempts, 30)), cap)
    delay: timedelta = ceiling * rng.uniform(0.5, 1.0)
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=retry_after))
    return delay


def render_job(app: App, job: DeliveryJob) -> Message:
    """The message for a claimed delivery, rendered now from stored data."""
    if job.kind == "digest":
        return app.renderer.render_digest(digest_view(app, job.payload), job.key)
    if job.kind == "health":
        return health_message(job.key, job.payload)
    if job.match_id is None:
        raise PermanentDeliveryError(f"delivery {job.key} has nothing to render")
    record = app.store.match_record(job.match_id)
    if record is None:
        raise PermanentDeliveryError(f"delivery {job.key}: its match is gone (retention?)")
    watchlist = app.watchlists.get(record.watchlist)
    alert = AlertView(
        watchlist=record.watchlist,
        description=watchlist.description if watchlist else "",
        item=record.item,
        hits=record.hits,
        also_reported_by=tuple(app.store.other_outlets(record.item.story_id, record.item.id)),
    )
    return app.renderer.render_alert(alert, job.key)


def deliver_due(app: App, *, now: datetime | None = None) -> DeliveryReport:
    """Send one batch of due deliveries; returns what happened to each."""
    now = now or utc_now()
    settings = app.config.monitor.delivery
    report = DeliveryReport()
    jobs = app.store.claim_deliveries(
        app.owner, now=now, lease=settings.lease, limit=settings.batch
    )
    noise = NoiseControl(app.config.monitor, app.store, now=now)
    used: set[str] = set()
    backing_off: dict[str, datetime] = {}  # channel -> its retry time after a failure
    try:
        for job in jobs:
            # A batch can outlast its lease (a slow channel, a busy machine): each job is
            # taken again just before it is sent, and left if another instance has it now.
            renewed = max(now, utc_now()) + settings.lease
            if not app.store.renew_claim(job, app.owner, until=renewed):
                continue
            with structlog.contextvars.bound_contextvars(
                delivery=job.key, channel=job.channel, watchlist=job.watchlist
            ):
                if job.channel in backing_off:
                    until = backing_off[job.channel]
                    app.store.reschedule(job, app.owner, due_at=until, kind=job.kind)
                    report.retried += 1
                    log.debug("delivery_deferred", until=until.isoformat())
                    continue
                retry_at = _deliver_one(app, job, report, noise, now)
                if retry_at is not None:
                    backing_off[job.channel] = retry_at
                used.add(job.channel)
    finally:
        for name in used:
            channel = app.channels.get(name)
            if channel is not None:
                channel.close()
    return report


def _deliver_one(
    app: App, job: DeliveryJob, report: DeliveryReport, noise: NoiseControl, now: datetime
) -> datetime | None:
    """Hold, send or fail one delivery; returns its retry time if it failed transiently."""
    settings = app.config.monitor.delivery
    channel = app.channels.get(job.channel)
    hold = noise.check(job)
    if hold is not None:
        app.store.reschedule(job, app.owner, due_at=hold.until, kind=hold.kind)
        report.held += 1
        log.info("delivery_held", reason=hold.reason, until=hold.until.isoformat())
        return None
    try:
        if channel is None:
            # The channel left the config; keep the alert until it returns or is retried.
            raise TransientDeliveryError(f"channel {job.channel!r} is not configured")
        message = render_job(app, job)
        channel.send(message)
    except (PermanentDeliveryError, RenderError) as exc:
        app.store.mark_dead(job, app.owner, error=str(exc))
        report.dead += 1
        record_delivery(job.channel, "dead")
        report.errors.append(f"{job.key}: {exc}")
        log.error("delivery_dead", error=str(exc), attempts=job.attempts + 1)
        return None
    except DeliveryError as exc:
        retry_after = exc.retry_after if isinstance(exc, TransientDeliveryError) else None
        return _retry_or_bury(app, job, report, now, str(exc), retry_after, settings.max_attempts)
    except Exception as exc:
        log.exception("delivery_crashed")
        return _retry_or_bury(app, job, report, now, repr(exc), None, settings.max_attempts)
    app.store.mark_sent(job, app.owner, now=now)
    noise.record_sent(job)
    report.sent += 1
    record_delivery(job.channel, "sent")
    log.info("delivery_sent", attempts=job.attempts + 1)
    return None


def _retry_or_bury(
    app: App,
    job: DeliveryJob,
    report: DeliveryReport,
    now: datetime,
    error: str,
    retry_after: float | None,
    max_attempts: int,
) -> datetime | None:
    """Schedule the next attempt and return its time, or bury the delivery (None)."""
    settings = app.config.monitor.delivery
    if job.attempts + 1 >= max_attempts:
        app.store.mark_dead(
            job, app.owner, error=f"gave up after {job.attempts + 1} attempts: {error}"
        )
        report.dead += 1
        record_delivery(job.channel, "dead")
        report.errors.append(f"{job.key}: {error}")
        log.error("delivery_dead", error=error, attempts=job.attempts + 1)
        return None
    delay = retry_delay(
        job.attempts, base=settings.retry_base, cap=settings.retry_max, retry_after=retry_after
    )
    app.store.mark_retry(job, app.owner, error=error, due_at=now + delay)
    report.retried += 1
    record_delivery(job.channel, "retried")
    report.errors.append(f"{job.key}: {error}")
    log.warning(
        "delivery_failed",
        error=error,
        attempts=job.attempts + 1,
        retry_in=round(delay.total_seconds(), 1),
    )
    return now + delay
