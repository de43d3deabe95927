"""Soak benchmark: `monitor run` polling many local feeds for a long time.

    .venv/bin/python benchmarks/bench_soak.py [--feeds 500] [--every 2] [--minutes 10]

A feed server in its own process serves ``--feeds`` RSS feeds on a few 127.0.0.1 ports,
with ETag and Last-Modified (304 when unchanged); new items keep arriving (``--new-per-
minute`` across all feeds, Reuters articles from $MONITOR_CORPUS when set), and a watch-list
matches some of them into a Maildir. The daemon runs as a child process, exactly as
deployed, polling every feed every ``--every`` seconds, with its /metrics endpoint on.

The first minute (or tenth of the run, whichever is longer) is the warm-up; what it ends
with is the baseline the end of the run is compared against, in this same run:

- memory: the daemon's resident set (median of the last samples) grows under 10%;
- file descriptors: the median open at the end is within ``FD_SLACK`` of the median after
  the warm-up (connections come and go; a leak only grows);
- poll lag: the 99th percentile of how late polls started after their scheduled time,
  over the whole run after the warm-up, is under 1 s (from monitor_poll_lag_seconds).

Exit status 0 when all three hold. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
PORTS = 10
ITEMS_PER_FEED = 10
SAMPLE_EVERY = 5.0
FD_SLACK = 10
WATCHLIST_QUERY = '"crude oil" OR opec OR opec*'


# --- the feed server (a child process: `bench_soak.py --serve`) -------------------------


def articles() -> list[tuple[str, str]]:
    """(title, body) pairs: Reuters if MONITOR_CORPUS is set, generated text otherwise."""
    corpus = os.environ.get("MONITOR_CORPUS")
    if corpus and (Path(corpus) / "news" / "articles.jsonl").is_file():
        with open(Path(corpus) / "news" / "articles.jsonl", encoding="utf-8") as lines:
            return [(a["title"], a["body"]) for a in map(json.loads, lines)]
    rng = random.Random(10)
    words = ["market", "shares", "trade", "crude", "oil", "bank", "rate", "opec", "talks"]
    return [
        (" ".join(rng.choices(words, k=6)).title(), " ".join(rng.choices(words, k=120)) + ".")
        for _ in range(5000)
    ]


@dataclass
class Feed:
    """One feed's newest items; its body and ETag change when an item arrives."""

    number: int
    items: list[tuple[int, str, str]] = field(default_factory=list)
    version: int = 0
    body: bytes = b""

    def publish(self, serial: int, title: str, text: str) -> None:
        self.items = [(serial, title, text), *self.items][:ITEMS_PER_FEED]
        self.version += 1
        entries = "".join(
            f"<item><title>{html.escape(t)}</title><guid>soak-{n}</guid>"
            f"<link>http://feeds.example/{self.number}/{n}</link>"
            f"<pubDate>{formatdate(1_700_000_000 + n * 60, usegmt=True)}</pubDate>"
            f"<description>{html.escape(b)}</description></item>"
            for n, t, b in self.items
        )
        self.body = (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Soak feed {self.number}</title><link>http://feeds.example/</link>"
            f"<description>soak</description>{entries}</channel></rss>"
        ).encode()

    @property
    def etag(self) -> str:
        return f'"{self.number}-{self.version}"'


class FeedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real feed servers do
    feeds: dict[int, Feed]
    lock: threading.Lock

    def do_GET(self) -> None:
        try:
            feed = self.feeds[int(self.path.strip("/").removesuffix(".xml").split("/")[-1])]
        except (KeyError, ValueError):
            self.send_error(404)
            return
        with self.lock:
            etag, body = feed.etag, feed.body
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


class FeedServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """Quiet: the daemon drops its connections when it stops."""


def serve(feeds: int, new_per_minute: float) -> None:
    """Serve until killed; prints the ports as one JSON line when listening."""
    texts = articles()
    rng = random.Random(6)
    lock = threading.Lock()
    all_feeds = {n: Feed(n) for n in range(feeds)}
    serial = 0
    for feed in all_feeds.values():
        for _ in range(ITEMS_PER_FEED):
            feed.publish(serial, *texts[serial % len(texts)])
            serial += 1
    handler = type("Handler", (FeedHandler,), {"feeds": all_feeds, "lock": lock})
    servers = [FeedServer(("127.0.0.1", 0), handler) for _ in range(PORTS)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps([server.server_address[1] for server in servers]), flush=True)
    while True:
        time.sleep(1.0)
        arrivals = int(new_per_minute / 60 + rng.random())
        with lock:
            for _ in range(arrivals):
                all_feeds[rng.randrange(feeds)].publish(serial, *texts[serial % len(texts)])
                serial += 1


# --- the daemon and what is measured ----------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_config(work: Path, ports: list[int], feeds: int, every: float, http_port: int) -> Path:
    sources = "\n".join(
        f"  - {{name: feed-{n}, type: feed, url: 'http://127.0.0.1:{ports[n % len(ports)]}"
        f"/feed/{n}.xml', every: {every}s, backfill: 0}}"
        for n in range(feeds)
    )
    config = work / "monitor.yaml"
    config.write_text(
        f"database: sqlite:///{work}/monitor.db\n"
        f"sources:\n{sources}\n"
        f"watchlists:\n  - {{name: oil, query: '{WATCHLIST_QUERY}', channels: [box]}}\n"
        f"channels:\n  box: {{type: maildir, path: {work}/mail, to: [desk@example.org]}}\n"
        "delivery: {every: 1s}\n"
        f"http: {{port: {http_port}}}\n"
    )
    return config


@dataclass
class Sample:
    at: float
    rss: int
    fds: int
    cpu: float


def sample(pid: int, started: float) -> Sample:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return Sample(time.monotonic() - started, rss * 1024, fds, cpu)


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(
    metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return sum(
        value
        for (metric, found), value in metrics.items()
        if metric == name and set(labels.items()) <= set(found)
    )


def lag_buckets(
    metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float],
) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) of monitor_poll_lag_seconds, ascending."""
    return sorted(
        (float(dict(labels)["le"]), value)
        for (name, labels), value in metrics.items()
        if name == "monitor_poll_lag_seconds_bucket"
    )


def quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Linear interpolation inside the bucket holding the q-quantile."""
    count = buckets[-1][1]
    target = q * count
    lower, below = 0.0, 0.0
    for bound, cumulative in buckets:
        if cumulative >= target:
            if bound == float("inf"):
                return lower
            share = (target - below) / (cumulative - below) if cumulative > below else 1.0
            return lower + (bound - lower) * share
        lower, below = bound, cumulative
    return lower


def median_of(samples: list[Sample], attribute: str) -> float:
    return statistics.median(getattr(s, attribute) for s in samples)


def run(args: argparse.Namespace) -> int:
    load_start = os.getloadavg()[0]
    work = Path(args.work or tempfile.mkdtemp(prefix="soak-"))
    work.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            "--feeds",
            str(args.feeds),
            "--new-per-minute",
            str(args.new_per_minute),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    ports = json.loads(server.stdout.readline())
    http_port = free_port()
    config = write_config(work, ports, args.feeds, args.every, http_port)
    log = open(work / "monitor.log", "w")  # noqa: SIM115 - open for the daemon's lifetime
    daemon = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "-c", str(config), "--log-format", "json"],
        cwd=work,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    duration = args.minutes * 60
    warmup = max(60.0, duration / 10)
    started = time.monotonic()
    samples: list[Sample] = []
    at_warmup: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    try:
        while time.monotonic() - started < duration:
            time.sleep(SAMPLE_EVERY)
            if daemon.poll() is not None:
                raise SystemExit(f"the daemon exited with {daemon.returncode}; see {log.name}")
            samples.append(sample(daemon.pid, started))
            if not at_warmup and samples[-1].at >= warmup:
                at_warmup = scrape(http_port)
            if args.verbose:
                s = samples[-1]
                print(f"  {s.at:6.0f}s rss {s.rss / 2**20:6.1f} MiB  fds {s.fds}", flush=True)
        at_end = scrape(http_port)
    finally:
        daemon.send_signal(signal.SIGTERM)
        stopped = daemon.wait(60)
        server.kill()
        server.wait()
        log.close()

    window = max(3, int(60 / SAMPLE_EVERY))  # a minute of samples on each side
    warm = [s for s in samples if s.at >= warmup][:window]
    end = samples[-window:]
    rss_warm, rss_end = median_of(warm, "rss"), median_of(end, "rss")
    fds_warm, fds_end = median_of(warm, "fds"), median_of(end, "fds")
    buckets = [
        (bound, count - dict(lag_buckets(at_warmup)).get(bound, 0.0))
        for bound, count in lag_buckets(at_end)
    ]
    polls = total(at_end, "monitor_polls_total") - total(at_warmup, "monitor_polls_total")
    measured = end[-1].at - warm[0].at
    growth = (rss_end - rss_warm) / rss_warm
    p99 = quantile(buckets, 0.99)
    within = dict(buckets).get(1.0, 0.0) / buckets[-1][1] if buckets[-1][1] else 0.0
    cpu = (end[-1].cpu - warm[0].cpu) / measured

    print(
        f"soak: {args.feeds} feeds every {args.every:g} s for {args.minutes:g} min "
        f"(warm-up {warmup:.0f} s); work folder {work}"
    )
    print(
        f"  machine: {os.cpu_count()} CPUs, load average {load_start:.1f} at start, "
        f"{os.getloadavg()[0]:.1f} at end"
    )
    print(
        f"  polls after warm-up: {polls:.0f} ({polls / measured:.1f}/s, wanted "
        f"{args.feeds / args.every:.1f}/s); failed "
        f"{total(at_end, 'monitor_polls_total', outcome='failed'):.0f}; "
        f"items {total(at_end, 'monitor_items_total'):.0f}; "
        f"alerts sent {total(at_end, 'monitor_deliveries_total', outcome='sent'):.0f}; "
        f"jobs missed {total(at_end, 'monitor_jobs_missed_total'):.0f}; "
        f"daemon CPU {cpu:.0%} of a core; exit {stopped}"
    )
    print(f"  {'figure':<26} {'after warm-up':>14} {'at end':>10} {'change':>9}  limit")
    checks = [
        (
            "resident memory (MiB)",
            rss_warm / 2**20,
            rss_end / 2**20,
            f"{growth:+.1%}",
            "< +10%",
            growth < 0.10,
        ),
        (
            "open file descriptors",
            fds_warm,
            fds_end,
            f"{fds_end - fds_warm:+.0f}",
            f"< +{FD_SLACK}",
            fds_end - fds_warm < FD_SLACK,
        ),
        (
            "poll lag p99 (s)",
            quantile(lag_buckets(at_warmup), 0.99) if at_warmup else 0.0,
            p99,
            f"{within:.2%} <= 1 s",
            "< 1 s",
            p99 < 1.0,
        ),
    ]
    for name, before, after, change, limit, ok in checks:
        print(
            f"  {name:<26} {before:>14.2f} {after:>10.2f} {change:>9}  {limit:<10} "
            f"{'ok' if ok else 'FAILED'}"
        )
    print("  (poll lag: the first column is the warm-up's own p99, start-up burst included;")
    print("   the second, the one checked, is every poll after the warm-up)")
    return 0 if all(ok for *_, ok in checks) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--every", type=float, default=2.0, help="poll interval, seconds")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument(
        "--new-per-minute", type=float, default=120.0, help="new items across all feeds per minute"
    )
    parser.add_argument("--work", help="folder for the database, Maildir and log")
    parser.add_argument("--verbose", action="store_true", help="print every sample")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.feeds, args.new_per_minute)
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
