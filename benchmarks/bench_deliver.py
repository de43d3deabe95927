"""Delivery throughput to local SMTP and webhook servers: one connection per burst (as
the outbox sends) beside a naive loop that opens a connection for every message.

    .venv/bin/python benchmarks/bench_deliver.py [--messages 200] [--repeat 3]

The servers are the test suite's (tests/servers.py) and run in a child process, so
they do not share this process's interpreter lock: aiosmtpd plain, aiosmtpd with
STARTTLS and AUTH (a throwaway trustme CA), and a webhook receiver that verifies every
Standard Webhooks signature with the ``standardwebhooks`` package.

Rows:
- ``channel``: SmtpChannel / WebhookChannel.send in a loop, rendered messages in hand;
- ``outbox``: ``deliver_due`` over a SQLite file holding that many due deliveries
  (claim, render from the store, send, mark sent), polled from a folder beforehand.

"naive" is the same code with the channel closed after every message, i.e. a new TCP
connection (and TLS handshake and login) per message. Best of ``--repeat`` runs.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the loopback servers and sample configs

import structlog  # noqa: E402 - after the path above, like the imports below
from samples import alert_view, open_app, stored_item, write_config, write_document  # noqa: E402
from servers import HOST, Certificates, SmtpServer, WebhookReceiver, new_secret  # noqa: E402

from monitor.alerts.outbox import deliver_due  # noqa: E402
from monitor.alerts.render import Renderer  # noqa: E402
from monitor.channels.base import Channel  # noqa: E402
from monitor.channels.smtp import SmtpChannel  # noqa: E402
from monitor.channels.webhook import WebhookChannel  # noqa: E402
from monitor.config import SmtpChannelConfig, WebhookChannelConfig  # noqa: E402
from monitor.model import Message  # noqa: E402
from monitor.pipeline import poll_source  # noqa: E402

USER, PASSWORD = "bench", "bench-password"
WORDS = [
    "seoul",
    "tokyo",
    "pact",
    "talks",
    "troops",
    "costs",
    "allies",
    "defence",
    "minister",
    "summit",
    "deadline",
]


# --- the servers, in a child process ---------------------------------------------------


def serve() -> None:
    """Child process: start the servers, print their addresses, run until stdin closes."""
    logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd warns on every AUTH
    with tempfile.TemporaryDirectory() as folder:
        certificates = Certificates.create(Path(folder))
        plain = SmtpServer()
        secure = SmtpServer(security="starttls", certificates=certificates, users={USER: PASSWORD})
        hooks = WebhookReceiver(os.environ["BENCH_WEBHOOK_SECRET"])
        with plain, secure, hooks:
            ports = {"plain": plain.port, "secure": secure.port, "webhook": hooks.url}
            print(json.dumps({**ports, "ca_file": str(certificates.ca_file)}), flush=True)
            sys.stdin.read()


@contextmanager
def servers(secret: str) -> Iterator[dict[str, Any]]:
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "BENCH_WEBHOOK_SECRET": secret},
    )
    assert child.stdin is not None
    assert child.stdout is not None
    try:
        yield json.loads(child.stdout.readline())
    finally:
        child.stdin.close()
        child.wait(timeout=30)


# --- targets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    channel: dict[str, Any]  # the channel's config, as in monitor.yaml


def targets(addresses: dict[str, Any], secret: str) -> list[Target]:
    mail = {"type": "smtp", "host": HOST, "to": ["desk@example.org"], "timeout": "10s"}
    return [
        Target("smtp, plain", {**mail, "port": addresses["plain"]}),
        Target(
            "smtp, STARTTLS + AUTH",
            {
                **mail,
                "port": addresses["secure"],
                "starttls": True,
                "username": USER,
                "password": PASSWORD,
                "ca_file": addresses["ca_file"],
            },
        ),
        Target(
            "webhook, signed",
            {"type": "webhook", "url": addresses["webhook"], "secret": secret, "timeout": "10s"},
        ),
    ]


def build_channel(target: Target, renderer: Renderer) -> Channel:
    if target.channel["type"] == "smtp":
        return SmtpChannel("bench", SmtpChannelConfig.model_validate(target.channel))
    return WebhookChannel("bench", WebhookChannelConfig.model_validate(target.channel), renderer)


class OneConnectionPerMessage:
    """The naive baseline: a channel closed after every message."""

    def __init__(self, inner: Channel) -> None:
        self.name = inner.name
        self.wants_html = inner.wants_html
        self.inner = inner

    def send(self, message: Message) -> None:
        self.inner.send(message)
        self.inner.close()

    def close(self) -> None:
        self.inner.close()


# --- runs ------------------------------------------------------------------------------


def channel_rate(target: Target, count: int, naive: bool) -> float:
    renderer = Renderer()
    messages = [
        renderer.render_alert(alert_view(stored_item(f"Story {n} on GSOMIA")), f"s{n}.bench")
        for n in range(count)
    ]
    channel = build_channel(target, renderer)
    sender = OneConnectionPerMessage(channel) if naive else channel
    started = time.perf_counter()
    for message in messages:
        sender.send(message)
    sender.close()
    return count / (time.perf_counter() - started)


def outbox_rate(target: Target, count: int, naive: bool) -> float:
    rng = random.Random(count)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for n in range(count):
            body = " ".join(rng.choices(WORDS, k=60))  # distinct stories, not one cluster
            write_document(folder / "news", f"s{n}", f"Story {n} on GSOMIA", f"GSOMIA {body}")
        config = write_config(
            folder,
            channels={"bench": target.channel},
            watchlists=[{"name": "gsomia", "query": "GSOMIA", "channels": ["bench"]}],
            delivery={"batch": count},
        )
        with open_app(config) as app:
            assert count == poll_source(app, "news").deliveries
            if naive:
                app.channels["bench"] = OneConnectionPerMessage(app.channels["bench"])
            started = time.perf_counter()
            report = deliver_due(app)
            elapsed = time.perf_counter() - started
        assert (count, 0) == (report.sent, report.failed), report.errors[:3]
    return count / elapsed


def best_pair(run: Callable[[bool], float], repeat: int) -> tuple[float, float]:
    """Best rate with a reused connection and naively, runs alternating so that both see
    the same load on a shared machine."""
    rates: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(repeat):
        for naive in (False, True):
            rates[naive].append(run(naive))
    return max(rates[False]), max(rates[True])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200, help="messages per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell (best is kept)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return 0
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))  # errors only
    secret = new_secret()
    with servers(secret) as addresses:
        load = os.getloadavg()[0]
        print(f"{args.messages} messages per run, best of {args.repeat}; deliveries per second")
        print(f"(load average {load:.1f} on {os.cpu_count()} CPUs at the start)")
        print(f"{'target':<24}{'path':<9}{'one per burst':>15}{'naive':>10}{'speed-up':>10}")
        for path, rate in (("channel", channel_rate), ("outbox", outbox_rate)):
            for target in targets(addresses, secret):
                reused, naive = best_pair(
                    lambda naive: rate(target, args.messages, naive),  # noqa: B023
                    args.repeat,
                )
                print(
                    f"{target.name:<24}{path:<9}{reused:>15,.0f}{naive:>10,.0f}"
                    f"{reused / naive:>9.1f}x"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
