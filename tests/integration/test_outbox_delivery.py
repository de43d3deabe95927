"""The outbox end to end: poll a folder into a SQLite file, deliver to real SMTP and
webhook servers that go down, refuse, stall and come back. Nothing is lost, nothing is
sent twice, and a resend after a crash carries the same identity."""

from __future__ import annotations

import email
import email.policy
import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import pytest
from samples import SEED_BODY, open_app, write_config, write_document
from servers import HOST, Certificates, SmtpServer, WebhookReceiver, new_secret
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from monitor.alerts import outbox
from monitor.alerts.outbox import DeliveryReport, deliver_due, render_job
from monitor.alerts.render import Renderer
from monitor.app import App
from monitor.model import Message
from monitor.pipeline import poll_source
from monitor.text import utc_now

SECRET = new_secret()
# Three deliveries per channel: the first story matches both watch-lists, the second one.
STORIES = {
    "pact": ("South Korea to let GSOMIA lapse", SEED_BODY),
    "costs": ("방위비 분담금 협상 서울서 재개", "한미 방위비 분담금 협상이 서울에서 재개됐다."),
}
EXPECTED = 3


def later(hours: float = 2) -> datetime:
    """A clock past every retry the test config can schedule (retry_max is 10 minutes)."""
    return utc_now() + timedelta(hours=hours)


def smtp(server: SmtpServer, **settings: Any) -> dict[str, Any]:
    return {
        "type": "smtp",
        "host": HOST,
        "port": server.port,
        "from": "monitor@example.org",
        "to": ["desk@example.org"],
        "timeout": "2s",
        **settings,
    }


def webhook(receiver: WebhookReceiver, **settings: Any) -> dict[str, Any]:
    return {"type": "webhook", "url": receiver.url, "secret": SECRET, "timeout": "2s", **settings}


@pytest.fixture
def news(tmp_path: Path) -> Path:
    for name, (title, body) in STORIES.items():
        write_document(tmp_path / "news", name, title, body)
    return tmp_path


@pytest.fixture
def mail() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def hooks() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET) as receiver:
        yield receiver


@contextmanager
def polled_app(
    folder: Path, mail: SmtpServer, hooks: WebhookReceiver, timeout: str = "2s"
) -> Iterator[App]:
    """An App delivering to both servers, with the news folder polled into its outbox."""
    channels = {"desk": smtp(mail, timeout=timeout), "chat": webhook(hooks, timeout=timeout)}
    with open_app(write_config(folder, channels=channels)) as app:
        assert EXPECTED * 2 == poll_source(app, "news").deliveries
        yield app


@pytest.fixture
def app(news: Path, mail: SmtpServer, hooks: WebhookReceiver) -> Iterator[App]:
    with polled_app(news, mail, hooks) as app:
        yield app


def counts(app: App) -> dict[str, int]:
    return app.store.outbox_counts(now=later(10))


def assert_each_once(mail: SmtpServer, hooks: WebhookReceiver) -> None:
    message_ids, hook_ids = mail.message_ids(), hooks.ids()
    assert EXPECTED == len(message_ids) == len(set(message_ids))
    assert EXPECTED == len(hook_ids) == len(set(hook_ids))
    assert [] == hooks.rejected


def test_everything_is_delivered_once(app: App, mail: SmtpServer, hooks: WebhookReceiver) -> None:
    report = deliver_due(app)
    again = deliver_due(app, now=later())

    assert (EXPECTED * 2, 0) == (report.sent, report.failed)
    assert (0, 0) == (again.sent, again.failed)
    assert_each_once(mail, hooks)
    assert {"pending": 0, "due": 0, "sent": 6, "dead": 0} == counts(app)


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [("554 5.7.1 Message rejected", "delivery_dead"), ("451 4.3.0 Busy", "delivery_failed")],
)
def test_each_outcome_is_logged_with_its_own_delivery(
    app: App, mail: SmtpServer, reply: str, outcome: str
) -> None:
    mail.fail_next(reply)
    with capture_logs([merge_contextvars]) as events:
        report = deliver_due(app)

    def logged(outcome: str) -> list[str]:
        return [event["delivery"] for event in events if event["event"] == outcome]

    failed = logged(outcome)
    assert [error.split(": ")[0] for error in report.errors] == failed
    assert 1 == len(failed)
    assert 0 < report.sent == len(set(logged("delivery_sent")))
    assert not set(failed) & set(logged("delivery_sent"))


def test_servers_down_keep_every_alert_until_they_return(
    app: App, mail: SmtpServer, hooks: WebhookReceiver
) -> None:
    mail.stop()
    hooks.stop()
    down = deliver_due(app)
    still_down = deliver_due(app, now=later())
    assert (0, EXPECTED * 2) == (down.sent, down.retried)
    assert (0, EXPECTED * 2) == (still_down.sent, still_down.retried)
    assert {"pending": 6, "due": 6, "sent": 0, "dead": 0} == counts(app)

    mail.start()
    hooks.start()
    back = deliver_due(app, now=later(4))
    deliver_due(app, now=later(8))

    assert (EXPECTED * 2, 0) == (back.sent, back.failed)
    assert_each_once(mail, hooks)


def test_refusals_retry_or_bury_as_the_reply_says(
    app: App, mail: SmtpServer, hooks: WebhookReceiver
) -> None:
    mail.fail_next("451 4.3.0 Try again later")
    hooks.fail_next(503, headers={"retry-after": "60"})
    refused = deliver_due(app)
    assert (0, EXPECTED * 2, 0) == (refused.sent, refused.retried, refused.dead)

    mail.fail_next("554 5.7.1 Message rejected")
    hooks.fail_next(400)
    rejected = deliver_due(app, now=later())
    assert (4, 0, 2) == (rejected.sent, rejected.retried, rejected.dead)
    dead = {letter["channel"]: letter["last_error"] for letter in app.store.dead_letters()}
    assert "554 5.7.1 Message rejected" in dead["desk"]
    assert "HTTP 400" in dead["chat"]

    assert 2 == app.store.requeue(dead=True, now=later())
    revived = deliver_due(app, now=later(3))

    assert (2, 0) == (revived.sent, revived.failed)
    assert_each_once(mail, hooks)


def test_a_slow_server_costs_one_timeout_per_batch_and_delivers_later(
    news: Path, mail: SmtpServer, hooks: WebhookReceiver
) -> None:
    with polled_app(news, mail, hooks, timeout="0.3s") as app, mail.stall(), hooks.stall():
        stalled = deliver_due(app)
    # The retries on the usual timeout: 0.3 s per step is for the stall, not for six
    # whole deliveries on a loaded machine.
    channels = {"desk": smtp(mail), "chat": webhook(hooks)}
    with open_app(write_config(news, channels=channels)) as app:
        recovered = deliver_due(app, now=later())

    assert (0, EXPECTED * 2) == (stalled.sent, stalled.retried)
    assert 2 == len(stalled.errors)  # one attempt per channel; the others waited
    assert (EXPECTED * 2, 0) == (recovered.sent, recovered.failed)
    assert_each_once(mail, hooks)


def test_a_crash_after_sending_resends_with_the_same_identity(
    app: App, mail: SmtpServer, hooks: WebhookReceiver
) -> None:
    now, lease = utc_now(), app.config.monitor.delivery.lease
    jobs = app.store.claim_deliveries("crashed", now=now, lease=lease, limit=10)
    for job in jobs:  # accepted by the servers, then the worker dies before marking them
        app.channels[job.channel].send(render_job(app, job))
    for channel in app.channels.values():
        channel.close()

    assert 0 == deliver_due(app, now=now + lease / 2).sent  # still leased
    report = deliver_due(app, now=now + lease * 2)  # the lease ran out

    assert EXPECTED * 2 == report.sent
    resent = [Counter(mail.message_ids()), Counter(hooks.ids())]
    assert [{2}, {2}] == [set(counts.values()) for counts in resent]  # the same id twice
    assert [EXPECTED, EXPECTED] == [len(counts) for counts in resent]


class FakeChannel:
    """Accepts every message (its key is kept) and runs ``on_send`` first, if given."""

    wants_html = True

    def __init__(self, on_send: Any = None) -> None:
        self.accepted: list[str] = []
        self.on_send = on_send

    def send(self, message: Message) -> None:
        if self.on_send is not None:
            self.on_send(len(self.accepted))
        self.accepted.append(message.delivery_key)

    def close(self) -> None:
        """Nothing to close."""


def test_what_was_sent_before_the_worker_died_is_recorded_as_sent(app: App) -> None:
    def die_at_the_third(sent: int) -> None:
        if sent == 2:
            raise KeyboardInterrupt  # not an error the outbox handles: the worker dies

    fake = FakeChannel(die_at_the_third)
    app.channels = {"desk": fake, "chat": fake}
    with pytest.raises(KeyboardInterrupt):
        deliver_due(app)

    assert 2 == len(fake.accepted)
    assert {"pending": 4, "due": 4, "sent": 2, "dead": 0} == counts(app)


def test_a_delivery_another_instance_took_during_the_batch_is_left_to_it(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first send outlasts the lease and another instance takes the next rows: the
    batch takes its claims again before the next send and leaves those rows alone."""
    clock = [utc_now()]
    monkeypatch.setattr(outbox, "utc_now", lambda: clock[0])
    lease = app.config.monitor.delivery.lease
    taken: list[str] = []

    def slow_first_send(sent: int) -> None:
        if sent == 0:
            clock[0] += lease * 2
            jobs = app.store.claim_deliveries("other", now=clock[0], lease=lease, limit=2)
            taken.extend(job.key for job in jobs)

    fake = FakeChannel(slow_first_send)
    app.channels = {"desk": fake, "chat": fake}
    report = deliver_due(app, now=clock[0])

    assert 2 == len(taken)
    assert taken[1] not in fake.accepted
    assert [taken[0]] == fake.accepted[:1]  # already on its way when the lease ran out
    assert (EXPECTED * 2 - 1, EXPECTED * 2 - 1) == (report.sent, len(fake.accepted))


def test_racing_workers_never_send_one_delivery_twice(
    app: App, mail: SmtpServer, hooks: WebhookReceiver
) -> None:
    reports: list[DeliveryReport] = []
    with open_app(app.config.path) as second:
        second.owner = "second-worker"
        start = threading.Barrier(2)

        def work(worker: App) -> None:
            start.wait()
            reports.append(deliver_due(worker))

        threads = [threading.Thread(target=work, args=(worker,)) for worker in (app, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert EXPECTED * 2 == sum(report.sent for report in reports)
    assert_each_once(mail, hooks)


def test_logs_never_carry_secrets(news: Path) -> None:
    certificates = Certificates.create(news)
    password, token = "not-the-password-123", "T0000/B0000/URLTOKEN0123"
    secure = SmtpServer(security="starttls", certificates=certificates, users={"monitor": "pw"})
    with secure as mail, WebhookReceiver(SECRET) as hooks:
        desk = smtp(mail, starttls=True, username="monitor", password=password)
        channels = {
            "desk": {**desk, "ca_file": str(certificates.ca_file)},
            "chat": webhook(hooks, url=f"{hooks.url}/{token}"),
        }
        hooks.fail_next(500)
        with open_app(write_config(news, channels=channels)) as app, capture_logs() as events:
            poll_source(app, "news")
            report = deliver_due(app)

    assert (0, 3, 3) == (report.sent, report.retried, report.dead)  # login refused; 500
    logged = json.dumps(events, default=str)
    assert "delivery_dead" in logged
    assert "delivery_failed" in logged
    for secret in (password, token, SECRET, SECRET.removeprefix("whsec_")):
        assert secret not in logged
        assert all(secret not in error for error in report.errors)


@pytest.mark.parametrize("elsewhere", [False, True])
def test_a_mailbox_refused_for_now_gets_its_alert_later_and_holds_back_no_other(
    news: Path, mail: SmtpServer, elsewhere: bool
) -> None:
    """Who took the mail is kept with the delivery, not in the process: a retry by
    another App on the database (a restart, another instance) goes to the full mailbox
    only, too."""
    desk = smtp(mail, to=["desk@example.org", "duty@example.org"])
    config = write_config(news, channels={"desk": desk})
    with open_app(config) as app:
        assert EXPECTED == poll_source(app, "news").deliveries
        mail.refuse("duty@example.org", "452 4.2.2 Mailbox full")
        first = deliver_due(app)
        with open_app(config) if elsewhere else nullcontext(app) as retrying:
            retried = deliver_due(retrying, now=later())
            again = deliver_due(retrying, now=later(4))

    assert (2, 1) == (first.sent, first.retried)  # the other alerts went to both
    assert (1, 0) == (retried.sent, retried.failed)  # to the full mailbox only
    assert (0, 0) == (again.sent, again.failed)
    for address in ("desk@example.org", "duty@example.org"):
        ids = [str(m.message["Message-ID"]) for m in mail.received() if address in m.recipients]
        assert EXPECTED == len(ids) == len(set(ids)), address


def test_an_override_failing_on_real_alerts_sends_them_with_the_shipped_templates(
    news: Path, mail: SmtpServer
) -> None:
    """The override renders `monitor check`'s sample (reported by another outlet) but no
    alert reported by one outlet: each goes out on time, rendered by the shipped
    templates, and the failure is logged with the delivery."""
    templates = news / "templates"
    templates.mkdir()
    (templates / "instant.txt.j2").write_text("Also in {{ alert.also_reported_by[0] }}\n")
    config = write_config(news, channels={"desk": smtp(mail)}, templates=str(templates))
    with open_app(config) as app, capture_logs() as events:
        assert [] == app.renderer.check()
        assert EXPECTED == poll_source(app, "news").deliveries
        report = deliver_due(app)

    assert (EXPECTED, 0, 0) == (report.sent, report.retried, report.dead)
    failed = [e for e in events if e["event"] == "template_failed"]
    assert EXPECTED == len(failed)
    assert all("instant.txt.j2" in e["error"] for e in failed)
    for received in mail.received():
        text = received.message.get_body(("plain",)).get_content()
        assert "Watch-list:" in text  # the shipped template's
        assert "Also in" not in text


def test_a_payload_the_receiver_chokes_on_holds_back_no_other_alert(
    app: App, mail: SmtpServer, hooks: WebhookReceiver
) -> None:
    """A 500 answers one payload whatever the time (a receiver's bug): the channel looks
    down once, and its other alerts wait one retry, not until that one is buried."""
    choke = b'"id":"s1.gsomia.chat"'  # the channel's first delivery
    hooks.choke_on(choke)
    first = deliver_due(app)
    assert (3, 3) == (first.sent, first.retried)  # the mails; the choke, and 2 put off

    second = deliver_due(app, now=later())
    assert (2, 1) == (second.sent, second.retried), second.errors  # the others went first
    assert [choke not in hook.body for hook in hooks.received()] == [True, True]


def test_a_stop_ends_a_batch_between_two_deliveries_and_gives_the_rest_back(
    news: Path, hooks: WebhookReceiver
) -> None:
    """The daemon's shutdown: what was sent is recorded, the rest is due again at once."""
    with open_app(write_config(news, channels={"chat": webhook(hooks)})) as app:
        assert EXPECTED == poll_source(app, "news").deliveries
        stop = threading.Event()
        hooks.on_request = lambda: len(hooks.received()) == 1 and stop.set()
        stopped = deliver_due(app, stop=stop)  # stops after the second send
        counts_after_stop = counts(app)
        app.owner = "next-start"  # another worker: nothing is left claimed for it to wait on
        rest = deliver_due(app)

    assert (2, 0) == (stopped.sent, stopped.failed)
    assert {"pending": 1, "due": 1, "sent": 2, "dead": 0} == counts_after_stop
    assert (1, 0) == (rest.sent, rest.failed)
    assert EXPECTED == len(set(hooks.ids())) == len(hooks.ids())


def test_a_channel_down_for_long_backs_off_as_a_channel(news: Path, hooks: WebhookReceiver) -> None:
    """The probes of an outage rotate over the waiting alerts, each tried with fewest
    attempts first; the wait still grows with the channel's failures in a row."""
    with open_app(write_config(news, channels={"chat": webhook(hooks)})) as app:
        assert EXPECTED == poll_source(app, "news").deliveries
        hooks.stop()
        start = utc_now()
        rounds = [deliver_due(app, now=start + timedelta(minutes=11 * n)) for n in range(4)]
        fourth = start + timedelta(minutes=33)
        # The fourth failure in a row waits 4-8 minutes (retry_base 1m, doubled each time),
        # however few attempts its own delivery had.
        waiting = app.store.outbox_counts(now=fourth + timedelta(minutes=3, seconds=59))
        hooks.start()
        back = deliver_due(app, now=fourth + timedelta(minutes=10))

    assert [(0, 3)] * 4 == [(r.sent, r.retried) for r in rounds]  # one try, two put off
    assert (3, 0) == (waiting["pending"], waiting["due"])
    assert (EXPECTED, 0) == (back.sent, back.failed)
    assert EXPECTED == len(set(hooks.ids()))


def test_a_delivery_buried_while_its_channel_is_down_still_puts_the_others_off(
    news: Path, hooks: WebhookReceiver
) -> None:
    """Its last attempt spent, the first delivery is buried; the channel is no less down
    for the next ones, which wait for its retry time instead of each being tried."""
    delivery = {"retry_base": "1m", "retry_max": "10m", "batch": 50, "max_attempts": 1}
    with open_app(write_config(news, channels={"chat": webhook(hooks)}, delivery=delivery)) as app:
        assert EXPECTED == poll_source(app, "news").deliveries
        hooks.stop()
        down = deliver_due(app)
        hooks.start()
        back = deliver_due(app, now=later())

    assert (0, 1, 2) == (down.sent, down.dead, down.retried)
    assert (2, 0) == (back.sent, back.failed)


def test_an_answer_from_the_channel_ends_its_failures_in_a_row(
    news: Path, hooks: WebhookReceiver
) -> None:
    """A refusal (a 4xx) is an answer: the channel is up, and its next failure waits the
    first backoff again, not one grown by the failures before the answer."""
    with open_app(write_config(news, channels={"chat": webhook(hooks)})) as app:
        assert EXPECTED == poll_source(app, "news").deliveries
        hooks.stop()
        start = utc_now()
        for n in range(3):
            deliver_due(app, now=start + timedelta(minutes=11 * n))
        assert app.channel_failures["chat"] == 3
        hooks.start()
        hooks.fail_next(400, times=EXPECTED)
        refused = deliver_due(app, now=start + timedelta(minutes=33))
        assert (0, EXPECTED) == (refused.sent, refused.dead)
        assert "chat" not in app.channel_failures


def test_channels_without_html_get_the_text_alone_and_no_html_is_rendered(
    news: Path, mail: SmtpServer, hooks: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``format: text`` mails (SMTP and Maildir) are the plain text alone, as a desk whose
    mail policy refuses HTML needs; for them, and for a webhook's JSON, the HTML template
    is never rendered."""
    rendered: list[str] = []
    render = Renderer._render

    def spy(renderer: Renderer, name: str, **context: Any) -> str:
        rendered.append(name)
        return render(renderer, name, **context)

    monkeypatch.setattr(Renderer, "_render", spy)
    box = {"type": "maildir", "path": str(news / "mail"), "to": ["desk@example.org"]}
    channels = {
        "desk": smtp(mail, format="text"),
        "box": {**box, "format": "text"},
        "chat": webhook(hooks),
    }
    with open_app(write_config(news, channels=channels)) as app:
        poll_source(app, "news")
        report = deliver_due(app)

    assert (EXPECTED * 3, 0) == (report.sent, report.failed)
    stored = [path.read_bytes() for path in (news / "mail" / "new").iterdir()]
    mails = [received.message for received in mail.received()]
    mails += [email.message_from_bytes(raw, policy=email.policy.default) for raw in stored]
    assert 2 * EXPECTED == len(mails)
    for message in cast(list[EmailMessage], mails):
        assert "text/plain" == message.get_content_type()
        assert not message.is_multipart()
        assert message["Subject"].split("] ", 1)[1] in message.get_content()
    assert EXPECTED == len(hooks.ids())
    assert {"instant.subject.j2", "instant.txt.j2"} == set(rendered)


def test_a_custom_webhook_body_has_the_messages_html(news: Path, hooks: WebhookReceiver) -> None:
    """A custom body template may show ``message.html``: it is rendered for that channel."""
    template = '{"html": {{ message.html | tojson }}}'
    channels = {"chat": webhook(hooks, format="custom", body_template=template)}
    with open_app(write_config(news, channels=channels)) as app:
        poll_source(app, "news")
        assert (EXPECTED, 0) == (deliver_due(app).sent, len(hooks.rejected))

    bodies = [hook.json()["html"] for hook in hooks.received()]
    assert EXPECTED == len(bodies)
    assert all(body and "<html" in body.lower() for body in bodies)
