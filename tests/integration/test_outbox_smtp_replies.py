"""The outbox reads a mail's final SMTP reply only after rendering the next alert: each
reply still decides its own row's fate, and no row is recorded as sent before its 250
was read. Real aiosmtpd server; its answers are late (``reply_delay``), so a row
recorded before its answer would show."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from samples import open_app, write_config, write_document
from servers import DROP, HOST, SmtpServer
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from monitor.alerts import outbox
from monitor.alerts.outbox import DeliveryReport, deliver_due
from monitor.app import App
from monitor.pipeline import poll_source

ALERTS = 4
REPLY_DELAY = 0.05  # seconds: longer than rendering an alert takes


@dataclass
class Recorded:
    """What the outbox wrote about one row, and when (time.monotonic())."""

    outcome: str  # sent, retry, dead or put off (rescheduled without an attempt)
    error: str
    at: float


@pytest.fixture
def mail() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        server.reply_delay = REPLY_DELAY
        yield server


@contextmanager
def desk_app(folder: Path, mail: SmtpServer) -> Iterator[App]:
    """An App with ``ALERTS`` alerts for one SMTP channel in its outbox."""
    for n in range(ALERTS):
        write_document(folder / "news", f"story-{n}", f"GSOMIA talks, day {n}", "GSOMIA. " * 5)
    desk = {"type": "smtp", "host": HOST, "port": mail.port, "to": ["desk@example.org"]}
    config = write_config(
        folder,
        channels={"desk": {**desk, "timeout": "5s"}},
        watchlists=[{"name": "pact", "query": "GSOMIA", "channels": ["desk"]}],
    )
    with open_app(config) as app:
        assert ALERTS == poll_source(app, "news").deliveries
        yield app


def record_writes(app: App, monkeypatch: pytest.MonkeyPatch) -> dict[str, Recorded]:
    """Each row's recorded outcome by its key, filled in as the outbox writes it."""
    written: dict[str, Recorded] = {}
    store = app.store

    def spy(name: str, outcome: str) -> None:
        original = getattr(store, name)

        def write(jobs: Any, *args: Any, **kwargs: Any) -> Any:
            error = str(kwargs.get("error", ""))
            for job in jobs if isinstance(jobs, list) else [jobs]:
                written[job.key] = Recorded(outcome, error, time.monotonic())
            return original(jobs, *args, **kwargs)

        monkeypatch.setattr(store, name, write)

    spy("mark_sent_many", "sent")
    spy("mark_retry", "retry")
    spy("mark_dead", "dead")
    spy("reschedule", "put off")
    return written


def deliver(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> tuple[DeliveryReport, dict[str, Recorded]]:
    """One batch, each send recorded as soon as the outbox would record it."""
    monkeypatch.setattr(outbox, "RECORD_WITHIN", timedelta(0))
    written = record_writes(app, monkeypatch)
    return deliver_due(app), written


def in_send_order(mail: SmtpServer, written: dict[str, Recorded]) -> list[str]:
    """The rows' keys, those the server saw first, in the order it saw them."""
    seen = list(dict.fromkeys(answer.delivery for answer in mail.answered))
    return seen + sorted(key for key in written if key not in seen)


def assert_sent_after_their_250(mail: SmtpServer, written: dict[str, Recorded]) -> None:
    taken = {answer.delivery: answer.at for answer in mail.answered if answer.reply == "250"}
    for key, recorded in written.items():
        if recorded.outcome == "sent":
            assert recorded.at > taken[key], key


@pytest.mark.parametrize(
    ("reply", "outcome", "rest"),
    [
        ("451 4.3.0 Try again later", "retry", "put off"),  # the channel's others wait
        ("554 5.7.1 Message rejected", "dead", "sent"),
    ],
)
def test_a_late_refusal_is_the_refused_mails_own(
    tmp_path: Path,
    mail: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    reply: str,
    outcome: str,
    rest: str,
) -> None:
    with desk_app(tmp_path, mail) as app:
        mail.fail_next(reply, after=1)  # the second mail's end
        report, written = deliver(app, monkeypatch)

    first, second, *others = in_send_order(mail, written)
    assert ("sent", outcome) == (written[first].outcome, written[second].outcome)
    assert reply in written[second].error
    assert [rest] * len(others) == [written[key].outcome for key in others]
    assert_sent_after_their_250(mail, written)
    taken = [first, *others] if rest == "sent" else [first]
    assert taken == [m.message["X-Monitor-Delivery"] for m in mail.received()]
    assert len(taken) == report.sent


def test_a_connection_dropped_before_the_reply_fails_that_mail_only(
    tmp_path: Path, mail: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with desk_app(tmp_path, mail) as app:
        mail.drop_next(2, after=1)  # the second mail, and its try on a fresh connection
        report, written = deliver(app, monkeypatch)

    first, second, *others = in_send_order(mail, written)
    assert [DROP, DROP] == [a.reply for a in mail.answered if a.delivery == second]
    assert ("sent", "retry") == (written[first].outcome, written[second].outcome)
    assert "Connection unexpectedly closed" in written[second].error
    assert ["put off"] * len(others) == [written[key].outcome for key in others]
    assert (1, ALERTS - 1) == (report.sent, report.retried)
    assert_sent_after_their_250(mail, written)


def test_a_mail_whose_reply_was_lost_goes_again_on_a_fresh_connection(
    tmp_path: Path, mail: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with desk_app(tmp_path, mail) as app:
        mail.drop_next(after=1)
        report, written = deliver(app, monkeypatch)

    second = in_send_order(mail, written)[1]
    assert [DROP, "250"] == [a.reply for a in mail.answered if a.delivery == second]
    assert ["sent"] * ALERTS == [recorded.outcome for recorded in written.values()]
    assert ALERTS == report.sent == len(mail.received())
    assert 2 == len({received.peer for received in mail.received()})  # one reconnection
    assert_sent_after_their_250(mail, written)


def test_each_outcome_is_logged_with_its_own_delivery(
    tmp_path: Path, mail: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with desk_app(tmp_path, mail) as app, capture_logs([merge_contextvars]) as events:
        mail.fail_next("554 5.7.1 Message rejected", after=1)
        _, written = deliver(app, monkeypatch)

    logged = {
        event["delivery"]: event["event"]
        for event in events
        if event["event"] in ("delivery_sent", "delivery_dead")
    }
    assert {key: f"delivery_{recorded.outcome}" for key, recorded in written.items()} == logged
