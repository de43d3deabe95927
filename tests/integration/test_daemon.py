"""The daemon in-process on real files: jobs, reload, health, readiness and metrics."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from daemonkit import CONFIG, DaemonRun, wait_for
from feedserver import FeedServer, drip_headers, rss
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from servers import SmtpServer
from sqlalchemy import text

from monitor.alerts.digest import next_run, run_digest
from monitor.alerts.outbox import deliver_due
from monitor.app import build_app
from monitor.config import load_config
from monitor.daemon import Daemon
from monitor.errors import TransientDeliveryError
from monitor.model import Message
from monitor.pipeline import poll_source
from monitor.text import utc_now

JOBS = {"source:inbox", "deliver", "digest:morning", "housekeeping", "heartbeat", "probe"}


def metrics(run: DaemonRun) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = run.get("/metrics").text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _counted(name: str, labels: frozenset[tuple[str, str]]) -> float:
    return REGISTRY.get_sample_value(name, dict(labels)) or 0.0


def test_jobs_have_stable_ids_coalesce_and_never_overlap(tmp_path: Path) -> None:
    with DaemonRun(tmp_path) as run:
        jobs = {job.id: job for job in run.daemon.scheduler.get_jobs()}
        assert JOBS == set(jobs)
        assert all(job.coalesce and job.max_instances == 1 for job in jobs.values())
        assert timedelta(seconds=1) == jobs["source:inbox"].trigger.interval
        assert 0.1 == jobs["source:inbox"].trigger.jitter  # a tenth of the interval
    assert 0 == run.code


def test_a_new_file_is_alerted_and_counted_in_metrics(tmp_path: Path) -> None:
    # Counters live on the process's registry, which earlier daemons in this test
    # process added to: count from where they stand now.
    inbox = frozenset({("source", "inbox")})
    sent = ("monitor_deliveries_total", frozenset({("channel", "box"), ("outcome", "sent")}))
    items = ("monitor_items_total", inbox)
    matches = ("monitor_matches_total", frozenset({("watchlist", "pact")}))
    pending = ("monitor_outbox_deliveries", frozenset({("state", "pending")}))
    lag = ("monitor_poll_lag_seconds_count", frozenset())
    before = {key: _counted(*key) for key in (sent, items, matches)}

    def settled() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
        """A scrape after the delivery was counted and recorded as sent, and after the
        poll that found the file was counted: the delivery job may send the alert
        before the poll job, which stored it, counts its items and its lag, and the
        sent counter moves before the row is marked sent."""
        m = metrics(run)
        done = (
            m.get(sent, 0) > before[sent]
            and m.get(items, 0) > before[items]
            and m.get(matches, 0) > before[matches]
            and m.get(pending) == 0
            and m.get(lag, 0) >= 1
        )
        return m if done else None

    with DaemonRun(tmp_path) as run:
        run.write("pact.txt", "Pact signed\n\nThe pact was signed today.")
        wait_for(run.mails, "the alert mail")
        samples = wait_for(settled, "the delivery and the poll to be counted")
    assert samples[("monitor_polls_total", inbox | {("outcome", "ok")})] >= 1
    assert 1 == samples[items] - before[items]
    assert 1 == samples[matches] - before[matches]
    assert 0 == samples[pending]
    assert 1 == samples[("monitor_store_up", frozenset())]
    assert 1 == samples[("monitor_source_healthy", inbox)]
    assert samples[lag] >= 1
    assert samples[("process_open_fds", frozenset())] > 0


def test_healthz_fails_while_the_scheduler_misses_ticks(tmp_path: Path) -> None:
    with DaemonRun(tmp_path) as run:
        # Ready does not mean a heartbeat yet; and one late by 0.6 s fails /healthz.
        wait_for(lambda: run.get("/healthz").status_code == 200, "/healthz to pass")
        run.daemon.scheduler.pause()
        answer = wait_for(
            lambda: (r := run.get("/healthz")).status_code == 503 and r, "/healthz to fail"
        )
        assert {
            "ok": False,
            "scheduler": "missed ticks",
            "store": "ok",
        }.items() <= answer.json().items()
        run.daemon.scheduler.resume()
        wait_for(lambda: run.get("/healthz").status_code == 200, "/healthz to recover")
    assert 0 == run.code


def test_healthz_and_readyz_fail_when_the_store_is_unreachable(tmp_path: Path) -> None:
    with DaemonRun(tmp_path) as run:
        shutil.rmtree(tmp_path / "var")
        run.daemon.app.store.engine.dispose()  # drop open connections: new ones find nothing
        # /healthz also fails for a late heartbeat (0.6 s here, under load): wait for the
        # answer that blames the store.
        answer = wait_for(
            lambda: (
                (r := run.get("/healthz")).status_code == 503
                and r.json()["store"] == "unreachable"
                and r
            ),
            "/healthz to fail on the store",
        )
        assert not answer.json()["ok"]
        assert 503 == run.get("/readyz").status_code
        assert 0 == metrics(run)[("monitor_store_up", frozenset())]
    assert 0 == run.code


def test_endpoint_answers_only_its_paths_on_loopback(tmp_path: Path) -> None:
    with DaemonRun(tmp_path) as run:
        assert ("127.0.0.1", 404) == (run.daemon.http_address[0], run.get("/").status_code)
        ready = run.get("/readyz")
        assert {"ok": True, "state": "running", "sources": 1} == ready.json()


def test_reload_applies_added_removed_and_changed_jobs_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    with DaemonRun(tmp_path) as run:
        scheduler = run.daemon.scheduler
        digest_next = scheduler.get_job("digest:morning").next_run_time
        housekeeping_next = scheduler.get_job("housekeeping").next_run_time
        (tmp_path / "more").mkdir()
        run.config_path.write_text(
            CONFIG.replace(
                "sources:\n",
                "sources:\n  - {name: more, type: folder, path: more, every: 2s}\n",
            ).replace('"0 7 * * *"', '"0 8 * * *"')
        )
        reloaded_at = datetime.now(UTC)
        assert run.daemon.reload()
        assert JOBS | {"source:more"} == {job.id for job in scheduler.get_jobs()}
        assert housekeeping_next == scheduler.get_job("housekeeping").next_run_time
        # The changed digest fires at the next 08:00 (UTC): today's between 07:00 and
        # 08:00, while the 07:00 one it replaces was tomorrow's.
        eight = reloaded_at.replace(hour=8, minute=0, second=0, microsecond=0)
        changed_next = eight if eight > reloaded_at else eight + timedelta(days=1)
        assert digest_next.hour == 7
        assert changed_next == scheduler.get_job("digest:morning").next_run_time
        # A digest runs however late (behind a long drain), a poll not more than 300 s
        assert None is scheduler.get_job("digest:morning").misfire_grace_time
        assert 300 == scheduler.get_job("housekeeping").misfire_grace_time
        (tmp_path / "more" / "pact.txt").write_text("More\n\nAnother pact.")
        wait_for(run.mails, "an alert from the added source")

        run.config_path.write_text(
            CONFIG.replace("path: docs, every: 1s}", "path: docs, enabled: false}")
        )
        assert run.daemon.reload()
        assert JOBS - {"source:inbox"} == {job.id for job in scheduler.get_jobs()}


def test_a_digest_firing_missed_while_down_runs_at_start(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()
    (tmp_path / "monitor.yaml").write_text(CONFIG)
    app = build_app(load_config(tmp_path / "monitor.yaml"))
    down_since = utc_now() - timedelta(days=2)  # the last digest, then the daemon stopped
    try:
        run_digest(app, "morning", now=down_since)
    finally:
        app.close()
    with DaemonRun(tmp_path) as run:
        store = run.daemon.app.store
        # The 07:00 firings it was down for are not skipped until tomorrow's: one runs now.
        wait_for(
            lambda: store.digest_windows()["morning"][0] > down_since,
            "the missed digest to close its window",
        )
        assert run.daemon.scheduler.get_job("digest:morning").next_run_time > utc_now()


def test_a_digest_that_never_ran_waits_for_its_schedule(tmp_path: Path) -> None:
    with DaemonRun(tmp_path) as run:
        job = run.daemon.scheduler.get_job("digest:morning")
        assert job.next_run_time.hour == 7
        assert "morning" not in run.daemon.app.store.digest_windows()


def firings(daemon: Daemon, job_id: str, start: datetime, end: datetime) -> list[datetime]:
    """When the daemon's job fires between ``start`` and ``end`` (UTC), as the scheduler
    asks its trigger: each time from the previous firing, a moment after it ran."""
    trigger = daemon._wanted_jobs(daemon.app)[job_id].trigger()
    fired: list[datetime] = []
    fire = trigger.get_next_fire_time(None, start)
    while fire is not None and fire.astimezone(UTC) < end:
        fired.append(fire.astimezone(UTC))
        fire = trigger.get_next_fire_time(fire, fire.astimezone(UTC) + timedelta(milliseconds=5))
    return fired


def test_a_daily_digest_fires_once_on_the_days_the_clocks_change(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    path = tmp_path / "monitor.yaml"
    path.write_text(
        CONFIG.replace("digests:\n", "timezone: America/New_York\ndigests:\n").replace(
            '- {name: morning, schedule: "0 7 * * *", channels: [box]}',
            '- {name: early, schedule: "30 1 * * *", channels: [box]}\n'
            '  - {name: spring, schedule: "30 2 * * *", channels: [box]}\n'
            '  - {name: hourly, schedule: "0 * * * *", channels: [box]}',
        )
    )
    daemon = Daemon(load_config(path))
    try:
        # 3 November 2024: 01:30 happens twice in New York (EDT, then EST). Cron sends a
        # daily digest once, at the first; an hourly one fires in both hours.
        fall = datetime(2024, 11, 3, tzinfo=UTC), datetime(2024, 11, 3, 12, tzinfo=UTC)
        assert [datetime(2024, 11, 3, 5, 30, tzinfo=UTC)] == firings(daemon, "digest:early", *fall)
        assert 12 == len(firings(daemon, "digest:hourly", *fall))
        after = datetime(2024, 11, 3, 5, 31, tzinfo=UTC)
        nxt = next_run(daemon.app.config.monitor.digests[0], "America/New_York", after)
        assert datetime(2024, 11, 4, 6, 30, tzinfo=UTC) == nxt
        # 10 March 2024: 02:30 does not happen; the digest goes at 03:30 EDT, once.
        spring = datetime(2024, 3, 10, tzinfo=UTC), datetime(2024, 3, 11, tzinfo=UTC)
        assert [datetime(2024, 3, 10, 7, 30, tzinfo=UTC)] == firings(
            daemon, "digest:spring", *spring
        )
    finally:
        daemon.app.close()


def _database_in_a_file(root: Path) -> str:
    """open_store makes the SQLite file's folder: a file in the way is an OSError."""
    (root / "blocker").write_text("a file where a folder should be")
    return CONFIG.replace("sqlite:///var/monitor.db", "sqlite:///blocker/var/monitor.db")


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(lambda _: CONFIG.replace("query: pact", "query: 'pact AND ('"), id="query"),
        pytest.param(lambda _: CONFIG + "retention: !days 7\n", id="yaml-not-built"),
        pytest.param(_database_in_a_file, id="database-folder"),
    ],
)
def test_a_reload_that_cannot_be_applied_is_refused_and_the_old_config_goes_on(
    tmp_path: Path, broken: Callable[[Path], str]
) -> None:
    with DaemonRun(tmp_path) as run:
        app = run.daemon.app
        run.config_path.write_text(broken(tmp_path))
        assert not run.daemon.reload()
        assert app is run.daemon.app
        run.write("pact.txt", "Pact\n\nThe pact holds.")
        wait_for(run.mails, "an alert under the old config")
    assert 0 == run.code


def test_a_reload_to_a_busy_port_is_refused_and_the_endpoint_stays(tmp_path: Path) -> None:
    with socket.socket() as taken, DaemonRun(tmp_path) as run:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        address = run.daemon.http_address
        run.config_path.write_text(CONFIG.replace("http: {port: 0}", f"http: {{port: {port}}}"))
        assert not run.daemon.reload()
        assert address == run.daemon.http_address
        assert 200 == run.get("/readyz").status_code


def test_deliveries_made_before_an_error_still_reach_the_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch the outbox's database fails halfway through (here as the second alert's
    retry is written) raises out of the deliver job; the alert that went out before it
    still counts as sent."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "one.txt").write_text("Pact\n\nThe pact holds.")
    (tmp_path / "docs" / "two.txt").write_text("Pact again\n\nThe pact still holds.")
    path = tmp_path / "monitor.yaml"
    path.write_text(CONFIG)
    daemon = Daemon(load_config(path))
    app = daemon.app
    channel = app.channels["box"]
    send = channel.send
    sends: list[Message] = []

    def second_fails(message: Message) -> None:
        sends.append(message)
        if len(sends) > 1:
            raise TransientDeliveryError("the mail server is busy")
        send(message)

    def database_gone(*_: object, **__: object) -> None:
        raise RuntimeError("the database went away")

    labels = frozenset({("channel", "box"), ("outcome", "sent")})
    before = _counted("monitor_deliveries_total", labels)
    try:
        assert 2 == poll_source(app, "inbox").deliveries
        monkeypatch.setattr(channel, "send", second_fails)
        monkeypatch.setattr(app.store, "mark_retry", database_gone)
        with pytest.raises(RuntimeError, match="went away"):
            daemon._deliver()
    finally:
        app.close()
    assert 2 == len(sends)
    assert before + 1 == _counted("monitor_deliveries_total", labels)


def test_a_reload_during_a_send_leaves_the_send_alone(tmp_path: Path) -> None:
    """The old config's channels close when its last job ends, not under a send still
    using them: a QUIT written into the session from the reloading thread waited for a
    stalled server, and the send it cut short was marked for a retry or dead."""
    with SmtpServer() as smtp:
        smtp_config = CONFIG.replace(
            "box: {type: maildir, path: mail, to: [desk@example.org]}",
            f"box: {{type: smtp, host: 127.0.0.1, port: {smtp.port}, to: [desk@example.org]}}",
        )
        with DaemonRun(tmp_path, smtp_config) as run:
            run.write("pact-1.txt", "Pact one\n\nThe first pact holds.")
            wait_for(lambda: len(smtp.received()) == 1, "the first alert")  # a session open
            with smtp.stall():
                run.write("pact-2.txt", "Pact two\n\nA second pact, on trade.")
                wait_for(lambda: smtp.waiting, "the second alert's MAIL FROM waiting")
                run.config_path.write_text(smtp_config.replace("every: 1s}", "every: 2s}", 1))
                assert run.daemon.reload()
            wait_for(lambda: len(smtp.received()) == 2, "the second alert")
            counts = run.daemon.app.store.outbox_counts(now=utc_now())
            with run.daemon.app.store.engine.connect() as connection:
                attempts = connection.execute(text("SELECT attempts FROM deliveries")).all()
        # Cut short, the send would have failed once and gone again on a retry.
        assert [(1,), (1,)] == sorted(attempts)
        assert (2, 0, 0) == (counts["sent"], counts["pending"], counts["dead"])
    assert 0 == run.code


def test_a_retry_after_a_reload_goes_only_to_the_recipients_refused_for_now(
    tmp_path: Path,
) -> None:
    """Who took a mail that another recipient refused for now (4xx RCPT) is kept with
    the delivery: a reload builds a new SMTP channel, and its retry must not send the
    mail again to those who have it."""
    with SmtpServer() as smtp:
        smtp_config = CONFIG.replace(
            "box: {type: maildir, path: mail, to: [desk@example.org]}",
            f"box: {{type: smtp, host: 127.0.0.1, port: {smtp.port},"
            " to: [desk@example.org, duty@example.org]}",
        ).replace("delivery: {every: 1s}", "delivery: {every: 1s, retry_base: 1h, retry_max: 1h}")
        smtp.refuse("duty@example.org", "452 4.2.2 Mailbox full")
        with DaemonRun(tmp_path, smtp_config) as run:
            run.write("pact.txt", "Pact\n\nThe pact holds.")
            wait_for(
                lambda: (
                    run.daemon.app.store.outbox_counts(now=utc_now())["pending"] == 1
                    and len(smtp.received()) == 1
                ),
                "the alert, refused for duty@ for now",
            )
            run.config_path.write_text(smtp_config.replace("every: 1s}", "every: 2s}", 1))
            assert run.daemon.reload()
            retried = deliver_due(run.daemon.app, now=utc_now() + timedelta(hours=2))
        assert 1 == retried.sent
        assert [("desk@example.org",), ("duty@example.org",)] == [
            mail.recipients for mail in smtp.received()
        ]
    assert 0 == run.code


def test_a_poll_running_through_a_reload_plans_its_next_by_the_new_interval(
    tmp_path: Path,
) -> None:
    """The poll began under ``every: 1h``; a reload made it 2 minutes meanwhile. Its end
    plans the next poll within the new interval, not an hour on."""
    with FeedServer() as server:
        server.routes["/wire.xml"] = drip_headers(4, 0.5, rss(("g1", "GSOMIA", "Talks.")))
        hourly = CONFIG.replace(
            "  - {name: inbox, type: folder, path: docs, every: 1s}",
            f"  - {{name: wire, type: feed, url: '{server.url('/wire.xml')}', every: 1h,"
            " jitter: 0s}",
        )
        with DaemonRun(tmp_path, hourly) as run:
            wait_for(lambda: server.seen, "the poll at the server")
            run.config_path.write_text(hourly.replace("every: 1h", "every: 2m"))
            assert run.daemon.reload()
            wait_for(
                lambda: run.daemon.app.store.source_state("wire").last_success,
                "the poll's end",
            )
            soon = utc_now() + timedelta(minutes=10)
            wait_for(
                lambda: run.daemon.scheduler.get_job("source:wire").next_run_time < soon,
                "the next poll within the new interval",
            )
        assert 0 == run.code
