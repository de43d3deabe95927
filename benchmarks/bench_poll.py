"""Poll benchmark: one pass over many RSS feeds served on 127.0.0.1, cold and warm.

    .venv/bin/python benchmarks/bench_poll.py [--repeat 3] [--skip-peers]

Data: 200 feeds x 50 items and 1,000 feeds x 10 items, each item a different Reuters
article from $MONITOR_CORPUS/news/articles.jsonl (generated text without it), served by
a Python HTTP server in its own process with ETag and Last-Modified (304 when they
match), next to an aiosmtpd sink that counts messages. "Cold" is a fresh state, "warm"
the same feeds again (every answer a 304).

Measured, each pass in a child process (wall time, user+system CPU and peak RSS from
wait4; and the server process's CPU meanwhile, from /proc), in this same run:

- news-monitor: `monitor run --once --log-level WARNING` (polls as the daemon does, up
  to POLL_WORKERS at a time over one HTTP pool, then drains the outbox), with a
  catch-all watch-list mailing every item to the sink (text and HTML, the default; and
  the text alone, `format: text`, as rss2email mails by default), and ingest only (no
  watch-list);
  installed by this script (this checkout, `pip install .`, as deploy/ installs it) into
  a venv of its own under the work folder, as the peers are;
- rss2email 3.14 (SMTP to the sink) and feed2exec 0.23 (Maildir), installed by this
  script into their own venv under the work folder (pip, from PyPI);
- feedparser alone parsing the same 200 files with its defaults, right after each cold
  ingest pass, so that the two are compared under the same load.

The issue's targets are checked at the end: (a) mail pass >= 4x rss2email's cold
throughput, (b) ingest-only cold within 1.5x of feedparser alone, (c) warm no slower than
rss2email's warm, (d) peak RSS < 150 MiB. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEERS = ("rss2email==3.14", "feed2exec==0.23.0")
LAST_MODIFIED = formatdate(1_700_000_000, usegmt=True)
DATASETS = {"200x50": (200, 50), "1000x10": (1000, 10)}
# rss2email mails the text alone by default: this row does the same work.
TEXT_MAIL = "news-monitor mail, format: text"


# --- data ------------------------------------------------------------------------------


def articles(count: int) -> list[tuple[str, str]]:
    """``count`` distinct (title, body) pairs: Reuters if MONITOR_CORPUS is set."""
    corpus = os.environ.get("MONITOR_CORPUS")
    if corpus:
        with open(Path(corpus) / "news" / "articles.jsonl", encoding="utf-8") as lines:
            found = [(a["title"], a["body"]) for a in map(json.loads, lines)]
        if len(found) >= count:
            return found[:count]
    rng = random.Random(10)
    words = ["market", "shares", "trade", "minister", "said", "bank", "rate", "oil", "talks"]
    return [
        (
            " ".join(rng.choices(words, k=6)).title() + f" {n}",
            "\n\n".join(" ".join(rng.choices(words, k=60)) + "." for _ in range(5)),
        )
        for n in range(count)
    ]


def write_feeds(folder: Path, feeds: int, per_feed: int, texts: list[tuple[str, str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(feeds):
        items = []
        for i in range(per_feed):
            title, body = texts[f * per_feed + i]
            paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in body.split("\n\n"))
            items.append(
                f"<item><title>{html.escape(title)}</title>"
                f"<link>http://news.example/{folder.name}/{f}/{i}</link>"
                f"<guid>http://news.example/{folder.name}/{f}/{i}</guid>"
                f"<pubDate>{formatdate(1_600_000_000 + f * 1000 + i * 60, usegmt=True)}</pubDate>"
                f"<description>{html.escape(paragraphs)}</description></item>"
            )
        document = (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Feed {f}</title><link>http://news.example/{f}</link>"
            f"<description>bench</description>{''.join(items)}</channel></rss>"
        )
        (folder / f"f{f:04d}.xml").write_text(document, encoding="utf-8")


# --- the server process --------------------------------------------------------------


def serve(work: Path) -> None:
    """HTTP feeds with validators, and an SMTP sink; ports go to work/ports.json."""
    from aiosmtpd.controller import Controller

    documents = {
        f"/{path.parent.name}/{path.name}": (path.read_bytes(), _etag(path.read_bytes()))
        for path in work.glob("feeds-*/*.xml")
    }

    class Sink:
        count = 0

        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            Sink.count += 1
            return "250 OK"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes. Without TCP_NODELAY the body's last
        # segment waits for the ACK of the first, which a kept-alive connection delays
        # by 40 ms: stalls for a client that reuses connections, none for one that
        # opens a new connection each time.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            if self.path == "/_mails":
                self._answer(200, str(Sink.count).encode(), {})
                return
            body, etag = documents.get(self.path, (b"", ""))
            if not body:
                self._answer(404, b"", {})
            elif self.headers.get("If-None-Match") == etag or (
                self.headers.get("If-None-Match") is None
                and self.headers.get("If-Modified-Since") == LAST_MODIFIED
            ):
                self._answer(304, b"", {"ETag": etag, "Last-Modified": LAST_MODIFIED})
            else:
                headers = {"ETag": etag, "Last-Modified": LAST_MODIFIED}
                self._answer(200, body, {"Content-Type": "application/rss+xml", **headers})

        def _answer(self, code: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(code)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    with socket.socket() as probe:  # aiosmtpd needs a real port number up front
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    smtp = Controller(Sink(), hostname="127.0.0.1", port=free)
    smtp.start()
    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    http.daemon_threads = True
    ports = {"http": http.server_address[1], "smtp": free}
    (work / "ports.json").write_text(json.dumps(ports))
    http.serve_forever()


def _etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=8).hexdigest() + '"'


# --- measured passes -----------------------------------------------------------------


@dataclass
class Measure:
    wall: float
    cpu: float
    rss_mib: float
    code: int
    server_cpu: float = 0.0  # the feed server and SMTP sink's CPU meanwhile


def measure(argv: list[str], log: Path, server: int | None = None) -> Measure:
    """Run ``argv`` as a child; its wall time, CPU time and peak RSS, and the CPU time
    the ``server`` process (the feeds and the SMTP sink) spent meanwhile."""
    server_before = _cpu_of(server)
    with log.open("ab") as out:
        started = time.perf_counter()
        child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        _pid, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    served = _cpu_of(server) - server_before
    return Measure(wall, cpu, usage.ru_maxrss / 1024, child.returncode, served)


def _cpu_of(pid: int | None) -> float:
    """User+system CPU seconds of a running process, from /proc (0 without one)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def feedparser_pass(folder: Path) -> None:
    import feedparser

    entries = sum(len(feedparser.parse(p.read_bytes()).entries) for p in folder.glob("*.xml"))
    print(json.dumps({"entries": entries}))


# --- configs for each tool -----------------------------------------------------------


def monitor_config(
    run: Path, urls: list[str], smtp: int, mail: bool, mail_format: str = "html"
) -> Path:
    """``mail``: a catch-all watch-list mailing the sink, in ``mail_format`` (see the
    mail channels' ``format``)."""
    watchlists = [{"name": "all", "query": "/./", "channels": ["sink"]}] if mail else []
    sink = {"type": "smtp", "host": "127.0.0.1", "port": smtp, "to": ["desk@example.org"]}
    config = {
        "database": f"sqlite:///{run}/db.sqlite",
        "sources": [{"name": f"f{n:04d}", "type": "feed", "url": u} for n, u in enumerate(urls)],
        "channels": {"sink": {**sink, "format": mail_format}},
        "watchlists": watchlists,
        "delivery": {"batch": 1000},
    }
    path = run / "monitor.yaml"
    path.write_text(json.dumps(config))
    return path


def rss2email_config(run: Path, peers: Path, urls: list[str], smtp: int) -> list[str]:
    cfg, data = run / "r2e.cfg", run / "r2e.json"
    subprocess.run(
        [str(peers / "r2e"), "-c", str(cfg), "-d", str(data), "new", "desk@example.org"],
        check=True,
        capture_output=True,
    )
    settings = cfg.read_text()
    for key, value in {
        "email-protocol": "smtp",
        "smtp-server": "127.0.0.1",
        "smtp-port": str(smtp),
        "smtp-ssl": "False",
    }.items():
        settings = "\n".join(
            f"{key} = {value}" if line.startswith(f"{key} =") else line
            for line in settings.splitlines()
        )
    settings += "".join(f"\n[feed.f{n:04d}]\nurl = {url}\n" for n, url in enumerate(urls))
    cfg.write_text(settings + "\n")
    feeds: list[dict[str, object]] = [
        {"name": f"f{n:04d}", "etag": None, "modified": None, "seen": {}} for n in range(len(urls))
    ]
    data.write_text(json.dumps({"version": 2, "feeds": feeds}))
    return [str(peers / "r2e"), "-c", str(cfg), "-d", str(data), "run"]


def feed2exec_config(run: Path, peers: Path, urls: list[str]) -> list[str]:
    ini = run / "feed2exec.ini"
    ini.write_text(
        "".join(
            f"[f{n:04d}]\nurl = {url}\noutput = feed2exec.plugins.maildir\n"
            f"mailbox = {run / 'mail'}\n\n"
            for n, url in enumerate(urls)
        )
    )
    return [
        str(peers / "feed2exec"),
        "--config",
        str(ini),
        "--database",
        str(run / "feed2exec.db"),
        "fetch",
    ]


def install_monitor(work: Path) -> Path:
    """This checkout installed into a venv of its own (its dependencies the first time),
    so it runs with what its own install brings, no test or development packages."""
    venv = work / "monitor-venv"
    pip = [str(venv / "bin" / "pip"), "install", "-q"]
    if not (venv / "bin" / "monitor").exists():
        print(f"installing news-monitor into {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([*pip, str(ROOT)], check=True)
    else:  # the code as it is now
        subprocess.run([*pip, "--no-deps", "--force-reinstall", str(ROOT)], check=True)
    return venv / "bin"


def install_peers(work: Path) -> Path:
    venv = work / "peers-venv"
    if not (venv / "bin" / "feed2exec").exists():
        print(f"installing {', '.join(PEERS)} into {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "pip"), "install", "-q", *PEERS]
        subprocess.run(pip, check=True)
    return venv / "bin"


# --- the run -------------------------------------------------------------------------


@dataclass
class Row:
    tool: str
    dataset: str
    cold: Measure
    warm: Measure
    note: str = ""


def cold_and_warm(
    name: str,
    dataset: str,
    work: Path,
    repeat: int,
    prepare: Callable[[Path], list[str]],
    server: int,
    beside: Callable[[], None] | None = None,
) -> Row:
    """Median of ``repeat`` cold passes (each on a fresh state) and of the warm passes
    that follow them on the same state; ``beside`` is measured after each cold pass (a
    run to compare it with, under the same load: a machine's speed drifts)."""
    colds, warms = [], []
    log = work / f"{name}-{dataset}.log"
    for attempt in range(repeat):
        run = work / "runs" / f"{name}-{dataset}-{attempt}"
        run.mkdir(parents=True)
        argv = prepare(run)
        colds.append(measure(argv, log, server))
        if beside is not None:
            beside()
        warms.append(measure(argv, log, server))
    return Row(name, dataset, _median(colds), _median(warms))


def _median(runs: list[Measure]) -> Measure:
    return Measure(
        statistics.median(m.wall for m in runs),
        statistics.median(m.cpu for m in runs),
        max(m.rss_mib for m in runs),
        max(m.code for m in runs),
        statistics.median(m.server_cpu for m in runs),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_work = Path(tempfile.gettempdir()) / "news-monitor-bench"
    parser.add_argument("--work", type=Path, default=default_work)
    parser.add_argument("--repeat", type=int, default=1, help="median of N runs (default 1)")
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--feedparser-pass", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.work)
        return 0
    if args.feedparser_pass:
        feedparser_pass(args.feedparser_pass)
        return 0
    return benchmark(args.work, args.repeat, args.skip_peers)


def benchmark(work: Path, repeat: int, skip_peers: bool) -> int:
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run(["rm", "-rf", str(work / "runs"), str(work / "ports.json")], check=True)
    for log in work.glob("*.log"):
        log.unlink()
    texts = articles(10_000)
    for dataset, (feeds, per_feed) in DATASETS.items():
        if not (work / f"feeds-{dataset}").exists():
            write_feeds(work / f"feeds-{dataset}", feeds, per_feed, texts)
    peers = None if skip_peers else install_peers(work)
    installed = install_monitor(work)
    me = [sys.executable, str(Path(__file__).resolve())]
    server = subprocess.Popen([*me, "--serve", "--work", str(work)])
    try:
        while not (work / "ports.json").exists():
            time.sleep(0.05)
        ports = json.loads((work / "ports.json").read_text())
        rows = run_all(work, repeat, installed, peers, me, ports, server.pid)
    finally:
        server.terminate()
        server.wait()
    report(rows, work)
    return 0


def run_all(
    work: Path,
    repeat: int,
    installed: Path,
    peers: Path | None,
    me: list[str],
    ports: dict[str, int],
    server: int,
) -> list[Row]:
    def urls(dataset: str) -> list[str]:
        files = sorted((work / f"feeds-{dataset}").glob("*.xml"))
        return [f"http://127.0.0.1:{ports['http']}/feeds-{dataset}/{p.name}" for p in files]

    def ours(dataset: str, mail: bool, mail_format: str = "html") -> Callable[[Path], list[str]]:
        def prepare(run: Path) -> list[str]:
            config = monitor_config(run, urls(dataset), ports["smtp"], mail, mail_format)
            return [*monitor, "run", "--once", "-c", str(config), "--log-level", "WARNING"]

        return prepare

    monitor = [str(installed / "monitor")]
    parse = [*me, "--feedparser-pass", str(work / "feeds-200x50")]
    parses: list[Measure] = []

    def parse_alone() -> None:
        """feedparser alone, right after each cold ingest pass it is compared with."""
        parses.append(measure(parse, work / "feedparser.log"))

    ingest = ours("200x50", False)
    rows = [
        cold_and_warm("news-monitor mail", "200x50", work, repeat, ours("200x50", True), server),
        cold_and_warm(TEXT_MAIL, "200x50", work, repeat, ours("200x50", True, "text"), server),
        cold_and_warm("news-monitor ingest", "200x50", work, repeat, ingest, server, parse_alone),
        cold_and_warm(
            "news-monitor ingest", "1000x10", work, repeat, ours("1000x10", False), server
        ),
    ]
    alone = _median(parses)
    rows.append(Row("feedparser alone", "200x50", alone, alone, "parse only, defaults"))
    if peers is not None:
        rows.append(
            cold_and_warm(
                "rss2email 3.14",
                "200x50",
                work,
                repeat,
                lambda run: rss2email_config(run, peers, urls("200x50"), ports["smtp"]),
                server,
            )
        )
        rows.append(
            cold_and_warm(
                "feed2exec 0.23",
                "200x50",
                work,
                repeat,
                lambda run: feed2exec_config(run, peers, urls("200x50")),
                server,
            )
        )
    return rows


def report(rows: list[Row], work: Path) -> None:
    print(f"\nlogs and state in {work}\n")
    print("| tool | feeds | pass | wall s | CPU s | peak RSS MiB | exit | server CPU s |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        for kind, m in (("cold", row.cold), ("warm", row.warm)):
            if row.note and kind == "warm":
                continue
            label = row.note or kind
            print(
                f"| {row.tool} | {row.dataset} | {label} | {m.wall:.2f} | {m.cpu:.2f} "
                f"| {m.rss_mib:.0f} | {m.code} | {m.server_cpu:.2f} |"
            )
    find = {(r.tool, r.dataset): r for r in rows}
    mail, ingest = find[("news-monitor mail", "200x50")], find[("news-monitor ingest", "200x50")]
    alone = find[("feedparser alone", "200x50")].cold
    peak = max(max(r.cold.rss_mib, r.warm.rss_mib) for r in rows if r.tool.startswith("news"))
    print("\nratios: wall (CPU); a loaded machine stretches wall times, CPU less so")
    b = (ingest.cold.wall / alone.wall, ingest.cold.cpu / alone.cpu)
    print(f"(b) ingest cold / feedparser alone = {b[0]:.2f} ({b[1]:.2f}) (target <= 1.5)")
    print(f"(d) peak RSS of news-monitor = {peak:.0f} MiB (target < 150)")
    r2e = find.get(("rss2email 3.14", "200x50"))
    if r2e is not None:
        text = find[(TEXT_MAIL, "200x50")]
        for label, row in (("text+HTML mail", mail), ("text-only mail (rss2email's kind)", text)):
            a = (r2e.cold.wall / row.cold.wall, r2e.cold.cpu / row.cold.cpu)
            print(
                f"(a) {label}: cold throughput {a[0]:.2f}x rss2email's ({a[1]:.2f}x by CPU)"
                " (target >= 4)"
            )
        # The sink is a floor no client can go under: at 4x, the pass gets a quarter of
        # rss2email's wall time, and the sink needs its CPU time within it.
        print(
            f"    4x would be {r2e.cold.wall / 4:.2f} s; the feed server and SMTP sink alone "
            f"spent {mail.cold.server_cpu:.2f} s of CPU in our cold mail pass"
        )
        c = (mail.warm.wall / r2e.warm.wall, mail.warm.cpu / r2e.warm.cpu)
        print(f"(c) warm / rss2email warm = {c[0]:.2f} ({c[1]:.2f}) (target <= 1.0)")


if __name__ == "__main__":
    sys.exit(main())
