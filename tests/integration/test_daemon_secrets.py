"""Secrets never reach the logs: the daemon at DEBUG, delivering through an SMTP server
that wants AUTH over STARTTLS and a webhook receiver that checks signatures, with a
failure of each on the way, logs neither the SMTP password nor the webhook secret."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from daemonkit import DaemonRun, wait_for
from servers import Certificates, SmtpServer, WebhookReceiver, new_secret

from monitor.logging import configure_logging

SMTP_PASSWORD = "correct-Horse-battery-9"
HOOK_SECRET = new_secret()
# configure_logging binds to each test's captured stderr (see conftest).
pytestmark = pytest.mark.usefixtures("restore_logging")


def test_no_secret_in_any_log_line_at_debug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    certificates = Certificates.create(tmp_path)
    monkeypatch.setenv("SMTP_PASSWORD", SMTP_PASSWORD)
    monkeypatch.setenv("HOOK_SECRET", HOOK_SECRET)
    configure_logging("json", "DEBUG")
    with (
        SmtpServer(
            security="starttls", certificates=certificates, users={"monitor": SMTP_PASSWORD}
        ) as smtp,
        WebhookReceiver(HOOK_SECRET) as hooks,
    ):
        smtp.fail_next("451 4.3.0 try again later")
        hooks.fail_next(500)
        config = f"""
database: sqlite:///var/monitor.db
sources:
  - {{name: inbox, type: folder, path: docs, every: 1s}}
watchlists:
  - {{name: pact, query: pact, channels: [desk, chat]}}
channels:
  desk:
    type: smtp
    host: 127.0.0.1
    port: {smtp.port}
    starttls: true
    ca_file: {certificates.ca_file}
    username: monitor
    password: "${{SMTP_PASSWORD}}"
    from: monitor@example.org
    to: [desk@example.org]
  chat: {{type: webhook, url: "{hooks.url}", secret: "${{HOOK_SECRET}}"}}
delivery: {{every: 1s, retry_base: 1s, retry_max: 1s}}
http: {{port: 0}}
"""
        with DaemonRun(tmp_path, config) as run:
            run.write("pact.txt", "Pact signed\n\nThe pact was signed today.")
            wait_for(lambda: smtp.received() and hooks.received(), "both deliveries")
        assert 0 == run.code
    output = capsys.readouterr()
    logged = output.err + output.out
    events = logged.count('"event": "delivery_failed"'), logged.count('"event": "delivery_sent"')
    assert (2, 2) == events  # a failure and a success on each channel, all logged
    assert '"level": "debug"' in logged
    plain = base64.b64encode(f"\0monitor\0{SMTP_PASSWORD}".encode()).decode()  # AUTH PLAIN
    for secret in (SMTP_PASSWORD, HOOK_SECRET, HOOK_SECRET.removeprefix("whsec_"), plain):
        assert secret not in logged
