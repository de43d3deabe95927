"""The delivery worker: claim due outbox rows, render, send, and record the outcome.

A row is marked sent only after the channel accepted it. A transient failure retries
with exponential backoff plus jitter (capped); a permanent one, or too many attempts,
makes it a dead letter with the reason. Claims are leases, so a crashed worker's rows
come back by themselves. Quiet hours and rate caps (noise.py) hold a row before it is
rendered, without counting an attempt.

After a transient failure, the rest of that channel's rows in the batch wait for the same
retry time without being tried: a server that is down or slow costs one timeout per
batch, not one per row. The next batch tries the row with the fewest attempts first, so
the probes of a long outage rotate over the waiting rows (no one row is buried for the
channel's outage), and their backoff is the channel's: it grows with the channel's
failures in a row (``App.channel_failures``), not with the probing row's own attempts.

A batch goes out a chunk (``CHUNK`` rows) at a time: the chunk's claims are taken again
just before its first send, and again for the rest of the chunk once ``RENEW_AFTER`` (at
most half a lease) has passed, so no row is sent that another instance took, or could
take before its send ends. The chunk's matches and items are read in one query. Sends
are recorded (one UPDATE) when the chunk ends, once the oldest unrecorded one is
``RECORD_WITHIN`` old, and when the batch ends however it ends: a crash between a send
and its record resends that row after its lease, with the same identity, as a crash
between a send and a per-row record did. Per row, the claim, the reads and the record
were four statements and two commits, more than rendering and sending took.

A daemon that is stopping ends a batch between two rows (``stop``): what was sent is
recorded, and the rows not yet tried are given back, due at once for the next start or
another instance. Ended by the drain's deadline instead, the process would leave up to
``RECORD_WITHIN`` of sends unrecorded, to go out again after the lease.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from contextvars import Token
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

import structlog
from structlog.typing import FilteringBoundLogger

from monitor.alerts.digest import digest_view
from monitor.alerts.noise import NoiseControl
from monitor.alerts.render import AlertView, Renderer
from monitor.app import App
from monitor.channels.base import Channel
from monitor.errors import (
    DeliveryError,
    PermanentDeliveryError,
    RenderError,
    TransientDeliveryError,
)
from monitor.health_alerts import health_message
from monitor.model import Message
from monitor.store.repo import DeliveryJob, MatchRecord, Store
from monitor.text import utc_now

log = structlog.get_logger("monitor.outbox")

CHUNK = 100
RENEW_AFTER = timedelta(seconds=10)
RECORD_WITHIN = timedelta(seconds=1)


@dataclass(slots=True)
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    held: int = 0  # by quiet hours or a rate cap: not a failure
    errors: list[str] = field(default_factory=list)
    # (channel, outcome) of each attempt, for the daemon's metrics
    attempts: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def failed(self) -> int:
        return self.retried + self.dead

    @property
    def handled(self) -> int:
        """Deliveries this run took a decision on (a batch short of full drained the due)."""
        return self.sent + self.retried + self.dead + self.held

    def attempted(self, channel: str, outcome: Literal["sent", "retried", "dead"]) -> None:
        """Count one delivery attempt on ``channel`` and its outcome."""
        self.attempts[(channel, outcome)] += 1
        if outcome == "sent":
            self.sent += 1
        elif outcome == "retried":
            self.retried += 1
        else:
            self.dead += 1

    def add(self, other: DeliveryReport) -> None:
        self.sent += other.sent
        self.retried += other.retried
        self.dead += other.dead
        self.held += other.held
        self.errors.extend(other.errors)
        self.attempts.update(other.attempts)


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


@dataclass(frozen=True, slots=True)
class StoredAlerts:
    """The matches (with items) and other outlets a chunk of deliveries renders, read in
    two queries for the chunk instead of two per delivery."""

    records: dict[int, MatchRecord]
    outlets: dict[tuple[int, int], list[str]]

    @classmethod
    def read(cls, store: Store, jobs: Sequence[DeliveryJob]) -> StoredAlerts:
        wanted = [job.match_id for job in jobs if _is_alert(job) and job.match_id is not None]
        records = store.match_records(wanted) if wanted else {}
        stories = [(record.item.story_id, record.item.id) for record in records.values()]
        return cls(records, store.other_outlets_many(stories) if stories else {})

    def view(self, app: App, match_id: int) -> AlertView | None:
        record = self.records.get(match_id)
        if record is None:
            return None
        watchlist = app.watchlists.get(record.watchlist)
        return AlertView(
            watchlist=record.watchlist,
            description=watchlist.description if watchlist else "",
            item=record.item,
            hits=record.hits,
            also_reported_by=tuple(self.outlets[(record.item.story_id, record.item.id)]),
        )


def _is_alert(job: DeliveryJob) -> bool:
    return job.kind not in ("digest", "health")


def render_job(
    app: App,
    job: DeliveryJob,
    alerts: StoredAlerts | None = None,
    renderer: Renderer | None = None,
    *,
    html: bool = True,
) -> Message:
    """The message for a claimed delivery, rendered now from stored data (``alerts``:
    read already for the delivery's chunk) by ``renderer`` (the app's by default);
    ``html``: with its HTML (see ``Channel.wants_html``)."""
    renderer = renderer or app.renderer
    if job.kind == "digest":
        return renderer.render_digest(digest_view(app, job.payload), job.key, html=html)
    if job.kind == "health":
        return health_message(job.key, job.payload, renderer.localtime)
    if job.match_id is None:
        raise PermanentDeliveryError(f"delivery {job.key} has nothing to render")
    alert = (alerts or StoredAlerts.read(app.store, [job])).view(app, job.match_id)
    if alert is None:
        raise PermanentDeliveryError(f"delivery {job.key}: its match is gone (retention?)")
    return renderer.render_alert(alert, job.key, html=html)


def _render_for_sending(
    app: App, job: DeliveryJob, alerts: StoredAlerts, channel: Channel
) -> Message:
    """The delivery's message for ``channel``; rendered by the shipped templates, the
    failure logged, when the config's templates fail on it (see ``Renderer.shipped``)."""
    html = channel.wants_html
    try:
        return render_job(app, job, alerts, html=html)
    except RenderError as exc:
        shipped = app.renderer.shipped
        if shipped is app.renderer:
            raise
        log.error("template_failed", error=str(exc), rendered_with="shipped templates")
        return render_job(app, job, alerts, shipped, html=html)


class _Claims:
    """A chunk's claims: taken again together just before its first send, and again (for
    the rows not yet handled) once ``RENEW_AFTER`` or half a lease has passed since."""

    def __init__(self, app: App, jobs: Sequence[DeliveryJob], now: datetime) -> None:
        self.app = app
        self.now = now
        self.lease = app.config.monitor.delivery.lease
        self.renew_after = min(RENEW_AFTER, self.lease / 2)
        self._renew(jobs)

    def _clock(self) -> datetime:
        return max(self.now, utc_now())

    def _renew(self, jobs: Sequence[DeliveryJob]) -> None:
        self.renewed = self._clock()
        self.held = self.app.store.renew_claims(
            jobs, self.app.owner, until=self.renewed + self.lease
        )

    def hold(self, rest: Sequence[DeliveryJob]) -> bool:
        """Whether ``rest[0]`` (the next row; ``rest``, the chunk's unhandled rows) is
        still ours, for at least half a lease more."""
        if self._clock() - self.renewed > self.renew_after:
            self._renew(rest)
        return rest[0].id in self.held


class _SentRecords:
    """Sends the channels accepted, recorded as sent in one statement per flush."""

    def __init__(self, app: App, now: datetime) -> None:
        self.app = app
        self.now = now
        self.jobs: list[DeliveryJob] = []
        self.oldest = 0.0

    def add(self, job: DeliveryJob) -> None:
        if not self.jobs:
            self.oldest = time.monotonic()
        self.jobs.append(job)

    def flush_if_old(self) -> None:
        if self.jobs and time.monotonic() - self.oldest > RECORD_WITHIN.total_seconds():
            self.flush()

    def flush(self) -> None:
        jobs, self.jobs = self.jobs, []
        if jobs:
            self.app.store.mark_sent_many(jobs, self.app.owner, now=self.now)


def deliver_due(
    app: App,
    *,
    now: datetime | None = None,
    report: DeliveryReport | None = None,
    stop: threading.Event | None = None,
) -> DeliveryReport:
    """Send one batch of due deliveries; returns what happened to each, in ``report``
    when given (which then holds the attempts made before an error, too). Once ``stop``
    is set, the rows not yet tried are given back (see the module's docstring)."""
    now = now or utc_now()
    settings = app.config.monitor.delivery
    report = DeliveryReport() if report is None else report
    jobs = app.store.claim_deliveries(
        app.owner, now=now, lease=settings.lease, limit=settings.batch
    )
    noise = NoiseControl(app.config.monitor, app.store, now=now)
    # One logger for the batch's rows: the module's proxy builds one for every call
    # (structlog's cache is off, see configure_logging), even for a filtered line.
    logger: FilteringBoundLogger = log.bind()
    used: set[str] = set()
    backing_off: dict[str, datetime] = {}  # channel -> its retry time after a failure
    sent = _SentRecords(app, now)
    try:
        for start in range(0, len(jobs), CHUNK):
            chunk = jobs[start : start + CHUNK]
            claims = _Claims(app, chunk, now)
            alerts = StoredAlerts.read(app.store, [job for job in chunk if job.id in claims.held])
            for at, job in enumerate(chunk):
                if stop is not None and stop.is_set():
                    app.store.release_claims(jobs[start + at :], app.owner)
                    log.info("delivery_batch_stopped", left=len(jobs) - start - at)
                    return report
                if not claims.hold(chunk[at:]):
                    continue  # another instance has it now
                with _Bound(job):
                    if job.channel in backing_off:
                        until = backing_off[job.channel]
                        app.store.reschedule(job, app.owner, due_at=until, kind=job.kind)
                        report.retried += 1
                        logger.debug("delivery_deferred", until=until.isoformat())
                        continue
                    retry_at = _deliver_one(app, job, report, noise, now, alerts, sent, logger)
                    if retry_at is not None:
                        backing_off[job.channel] = retry_at
                    used.add(job.channel)
                sent.flush_if_old()
            sent.flush()
    finally:
        try:
            sent.flush()
        finally:
            for name in used:
                channel = app.channels.get(name)
                if channel is not None:
                    channel.close()
    return report


class _Bound:
    """The delivery's context for the log lines about it, bound as structlog's
    ``bound_contextvars`` binds it but without a generator, which cost more than the
    binding."""

    __slots__ = ("job", "tokens")

    def __init__(self, job: DeliveryJob) -> None:
        self.job = job
        self.tokens: Mapping[str, Token[Any]] = {}

    def __enter__(self) -> None:
        job = self.job
        self.tokens = structlog.contextvars.bind_contextvars(
            delivery=job.key, channel=job.channel, watchlist=job.watchlist
        )

    def __exit__(self, *exc: object) -> None:
        structlog.contextvars.reset_contextvars(**self.tokens)


def _deliver_one(
    app: App,
    job: DeliveryJob,
    report: DeliveryReport,
    noise: NoiseControl,
    now: datetime,
    alerts: StoredAlerts,
    sent: _SentRecords,
    logger: FilteringBoundLogger,
) -> datetime | None:
    """Hold, send or fail one delivery; returns its retry time if it failed transiently.
    ``logger``: the batch's."""
    channel = app.channels.get(job.channel)
    hold = noise.check(job)
    if hold is not None:
        app.store.reschedule(job, app.owner, due_at=hold.until, kind=hold.kind)
        report.held += 1
        logger.info("delivery_held", reason=hold.reason, until=hold.until.isoformat())
        return None
    try:
        if channel is None:
            # The channel left the config; keep the alert until it returns or is retried.
            raise TransientDeliveryError(f"channel {job.channel!r} is not configured")
        message = _render_for_sending(app, job, alerts, channel)
        if job.delivered_to:  # an earlier attempt reached them: see SmtpChannel
            message = replace(message, delivered_to=job.delivered_to)
        channel.send(message)
    except (PermanentDeliveryError, RenderError) as exc:
        if isinstance(exc, PermanentDeliveryError):  # it answered: it is up
            app.channel_failures.pop(job.channel, None)
        _bury(app, job, report, logger, str(exc))
        return None
    except DeliveryError as exc:
        transient = exc if isinstance(exc, TransientDeliveryError) else None
        retry_after = transient.retry_after if transient else None
        delivered_to = transient.delivered_to if transient else frozenset()
        # Some recipients refusing one message is no reason to hold the channel's others.
        whole_channel = transient is None or transient.whole_channel
        if not whole_channel:  # the server answered: the channel is up
            app.channel_failures.pop(job.channel, None)
            _retry_or_bury(
                app, job, report, now, logger, str(exc), retry_after, delivered_to=delivered_to
            )
            return None
        failures = app.channel_failures.get(job.channel, 0)
        app.channel_failures[job.channel] = failures + 1
        return _retry_or_bury(
            app, job, report, now, logger, str(exc), retry_after, failures, delivered_to
        )
    except Exception as exc:
        logger.exception("delivery_crashed")
        return _retry_or_bury(app, job, report, now, logger, repr(exc), None)
    app.channel_failures.pop(job.channel, None)
    sent.add(job)
    noise.record_sent(job)
    report.attempted(job.channel, "sent")
    logger.info("delivery_sent", attempts=job.attempts + 1)
    return None


def _retry_or_bury(
    app: App,
    job: DeliveryJob,
    report: DeliveryReport,
    now: datetime,
    logger: FilteringBoundLogger,
    error: str,
    retry_after: float | None,
    channel_failures: int = 0,
    delivered_to: frozenset[str] = frozenset(),
) -> datetime:
    """Schedule the next attempt, or bury the delivery after its last. Either way, the
    time the channel may be tried again: a buried delivery's channel is no less down for
    the others. The backoff counts the delivery's own failures, or its channel's in a
    row if more; ``delivered_to`` are the recipients the attempt reached."""
    settings = app.config.monitor.delivery
    delay = retry_delay(
        max(job.attempts, channel_failures),
        base=settings.retry_base,
        cap=settings.retry_max,
        retry_after=retry_after,
    )
    if job.attempts + 1 >= settings.max_attempts:
        _bury(app, job, report, logger, f"gave up after {job.attempts + 1} attempts: {error}")
        return now + delay
    app.store.mark_retry(job, app.owner, error=error, due_at=now + delay, delivered_to=delivered_to)
    report.attempted(job.channel, "retried")
    report.errors.append(f"{job.key}: {error}")
    logger.warning(
        "delivery_failed",
        error=error,
        attempts=job.attempts + 1,
        retry_in=round(delay.total_seconds(), 1),
    )
    return now + delay


def _bury(
    app: App, job: DeliveryJob, report: DeliveryReport, logger: FilteringBoundLogger, error: str
) -> None:
    """Keep the delivery as dead (``monitor deliveries retry --dead`` queues it again), and
    say why."""
    app.store.mark_dead(job, app.owner, error=error)
    report.attempted(job.channel, "dead")
    report.errors.append(f"{job.key}: {error}")
    logger.error("delivery_dead", error=error, attempts=job.attempts + 1)
