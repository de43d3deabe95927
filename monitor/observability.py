"""Metrics, and the optional HTTP endpoint that serves them: /healthz, /readyz, /metrics.

Counters and histograms live on prometheus-client's default registry, which also carries
the ``process_*`` metrics (resident memory, open file descriptors, CPU). What is true of
the database (outbox depth, each source's health and last success) is read when scraped
by ``StoreCollector``, so it stays right across restarts and when another instance did
the work. The endpoint is off unless the config has ``http:``; it binds 127.0.0.1 unless
told otherwise, and answers GET only.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.config import HttpConfig
from monitor.errors import MonitorError
from monitor.text import utc_now

if TYPE_CHECKING:
    from monitor.alerts.outbox import DeliveryReport
    from monitor.pipeline import PollOutcome
    from monitor.store import Store

log = structlog.get_logger("monitor.observability")

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

POLLS = Counter(
    "monitor_polls", "Source polls by outcome (ok, failed, skipped).", ["source", "outcome"]
)
ERRORS = Counter(
    "monitor_errors", "Errors by where they happened (source, delivery, job).", ["kind"]
)
ITEMS = Counter("monitor_items", "New items stored.", ["source"])
MATCHES = Counter("monitor_matches", "New watch-list matches (one per story).", ["watchlist"])
DELIVERIES = Counter(
    "monitor_deliveries",
    "Delivery attempts by channel and outcome (sent, retried, dead).",
    ["channel", "outcome"],
)
MISSED = Counter(
    "monitor_jobs_missed", "Scheduled runs skipped because they came too late.", ["job"]
)
OVERLAPPED = Counter(
    "monitor_jobs_overlapped",
    "Runs skipped because the job's previous run was still queued or running.",
    ["job"],
)
POLL_SECONDS = Histogram(
    "monitor_poll_duration_seconds",
    "Time a poll took, fetch to commit.",
    buckets=_LATENCY_BUCKETS,
)
POLL_LAG = Histogram(
    "monitor_poll_lag_seconds",
    "How long after its scheduled time a poll started.",
    buckets=_LATENCY_BUCKETS,
)
HEARTBEAT = Gauge(
    "monitor_heartbeat_timestamp_seconds", "When the scheduler last ran its heartbeat job."
)


def job_kind(job_id: str) -> str:
    """``source:seeds`` -> ``source``: job labels stay few whatever the config holds."""
    return job_id.split(":", 1)[0]


def record_poll(outcome: PollOutcome, seconds: float) -> None:
    if outcome.skipped:
        POLLS.labels(outcome.source, "skipped").inc()
        return
    POLLS.labels(outcome.source, "ok" if outcome.ok else "failed").inc()
    POLL_SECONDS.observe(seconds)
    if not outcome.ok:
        ERRORS.labels("source").inc()
    ITEMS.labels(outcome.source).inc(outcome.new)
    for watchlist in outcome.matched_watchlists:
        MATCHES.labels(watchlist).inc()


def record_deliveries(report: DeliveryReport) -> None:
    """The outcome of each delivery attempt in ``report``: sent, retried or dead."""
    for (channel, outcome), attempts in report.attempts.items():
        DELIVERIES.labels(channel, outcome).inc(attempts)
        if outcome != "sent":
            ERRORS.labels("delivery").inc(attempts)


class StoreCollector:
    """Gauges read from the database at scrape time (a prometheus-client Collector)."""

    def __init__(self, store: Callable[[], Store]) -> None:
        self._store = store

    def collect(self) -> Iterable[Metric]:
        store_up = GaugeMetricFamily("monitor_store_up", "Whether the database answered.")
        try:
            store = self._store()
            outbox = store.outbox_counts(now=utc_now())
            states = store.source_states()
        except Exception as exc:  # a scrape must say "down", not fail
            log.warning("metrics_store_failed", error=str(exc))
            store_up.add_metric([], 0)
            yield store_up
            return
        store_up.add_metric([], 1)
        yield store_up
        depth = GaugeMetricFamily(
            "monitor_outbox_deliveries",
            "Outbox rows by state (pending, due, dead).",
            labels=["state"],
        )
        for state in ("pending", "due", "dead"):
            depth.add_metric([state], outbox[state])
        yield depth
        healthy = GaugeMetricFamily(
            "monitor_source_healthy", "1 when the source's last poll succeeded.", labels=["source"]
        )
        success = GaugeMetricFamily(
            "monitor_source_last_success_timestamp_seconds",
            "When the source was last polled successfully.",
            labels=["source"],
        )
        for source in states:
            healthy.add_metric([source.name], 1 if source.health == "healthy" else 0)
            if source.last_success is not None:
                success.add_metric([source.name], source.last_success.timestamp())
        yield healthy
        yield success


@dataclass(frozen=True, slots=True)
class Health:
    """An answer to /healthz or /readyz: ok, and what was checked."""

    ok: bool
    checks: Mapping[str, Any] = field(default_factory=dict)


class Probe(Protocol):
    """What the endpoint asks the daemon."""

    def health(self) -> Health:
        """Alive: the scheduler ticks and the store answers."""

    def readiness(self) -> Health:
        """Started, not draining."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    probe: Probe
    metrics: Collector


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._reply(200, CONTENT_TYPE_LATEST, generate_latest(self.server.metrics))
        elif path in ("/healthz", "/readyz"):
            probe = self.server.probe
            answer = probe.health() if path == "/healthz" else probe.readiness()
            body = json.dumps({"ok": answer.ok, **answer.checks}, default=str).encode()
            self._reply(200 if answer.ok else 503, "application/json", body)
        else:
            self._reply(
                404, "text/plain; charset=utf-8", b"not found: try /healthz, /readyz, /metrics\n"
            )

    def _reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http_request", client=self.client_address[0], line=format % args)


class StatusServer:
    """The endpoint, served from a thread of its own until ``close``."""

    def __init__(self, config: HttpConfig, probe: Probe, store: Callable[[], Store]) -> None:
        self.config = config
        try:
            self._server = _Server((config.host, config.port), _Handler)
        except OSError as exc:
            raise MonitorError(
                f"http: cannot listen on {config.host}:{config.port}: {exc}"
            ) from exc
        self._server.probe = probe
        self._server.metrics = _Metrics(StoreCollector(store))
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="monitor-http", daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()
        host, port = self.address
        log.info("http_listening", host=host, port=port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@dataclass(frozen=True, slots=True)
class _Metrics:
    """The default registry followed by this daemon's own collector."""

    own: Collector

    def collect(self) -> Iterable[Metric]:
        yield from REGISTRY.collect()
        yield from self.own.collect()
