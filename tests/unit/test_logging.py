"""Logs: JSON lines with event names and bound context; secrets masked at every level."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import pytest
import structlog

from monitor.commands._common import load
from monitor.logging import MASK, configure_logging, register_secrets

SMTP_PASSWORD = "smtp-pass-Xq7v3"
HOOK_SECRET = "whsec_c2VjcmV0LWhvb2sta2V5LTk5"
# configure_logging binds to each test's captured stderr (see conftest).
pytestmark = pytest.mark.usefixtures("restore_logging")

CONFIG = """
database: sqlite:///db.sqlite
sources: []
watchlists: []
channels:
  desk:
    type: smtp
    host: 127.0.0.1
    port: 2525
    username: monitor
    password: "${SMTP_PASSWORD}"
    from: monitor@example.org
    to: [desk@example.org]
  chat:
    type: webhook
    url: http://127.0.0.1:9/hook
    secret: "${HOOK_SECRET}"
"""


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def test_json_lines_carry_event_level_time_and_bound_context(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("json", "INFO")
    with structlog.contextvars.bound_contextvars(source="seeds"):
        structlog.get_logger().info("source_polled", new=2)
    structlog.get_logger().debug("not_shown")
    [line] = lines(capsys)
    assert ("source_polled", "info", "seeds", 2) == (
        line["event"],
        line["level"],
        line["source"],
        line["new"],
    )
    assert str(line["timestamp"]).endswith("Z")


def test_library_lines_are_json_too(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "INFO")
    logging.getLogger("somelib").warning("disk %s is full", "/var")
    logging.getLogger("somelib").info("below the library threshold")
    [line] = lines(capsys)
    assert ("disk /var is full", "warning", "somelib") == (
        line["event"],
        line["level"],
        line["logger"],
    )


def test_secrets_from_the_config_appear_in_no_line_at_any_level(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "monitor.yaml").write_text(CONFIG)
    monkeypatch.setenv("SMTP_PASSWORD", SMTP_PASSWORD)
    monkeypatch.setenv("HOOK_SECRET", HOOK_SECRET)
    config = load(argparse.Namespace(config=tmp_path / "monitor.yaml"))
    configure_logging("json", "DEBUG")
    log = structlog.get_logger()
    for level in ("debug", "info", "warning", "error", "critical"):
        getattr(log, level)(
            "delivery_failed",
            error=f"535 authentication failed for monitor:{SMTP_PASSWORD}",
            request={"url": "http://127.0.0.1:9/hook", "headers": {"X-Key": HOOK_SECRET}},
            attempts=[SMTP_PASSWORD, (HOOK_SECRET,)],
        )
    try:
        raise RuntimeError(f"signing with {HOOK_SECRET} failed")
    except RuntimeError:
        log.exception("delivery_crashed")
    logging.getLogger("smtplib").error("login %s rejected", SMTP_PASSWORD)
    log.info("config_loaded", channels=config.monitor.model_dump(mode="json")["channels"])
    output = capsys.readouterr().err
    assert 8 == len(output.splitlines())
    assert SMTP_PASSWORD not in output
    assert HOOK_SECRET not in output
    assert MASK in output


def test_keys_that_name_a_secret_are_masked_whatever_their_value(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("json", "DEBUG")
    structlog.get_logger().debug(
        "connected", password="x", api_key="y", headers={"Authorization": "Bearer z"}, user="u"
    )
    [line] = lines(capsys)
    assert (MASK, MASK, {"Authorization": MASK}, "u") == (
        line["password"],
        line["api_key"],
        line["headers"],
        line["user"],
    )


def test_short_values_are_not_registered_as_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    register_secrets(["abc", ""])  # masking "abc" everywhere would garble every log line
    configure_logging("json", "INFO")
    structlog.get_logger().info("abcdef")
    assert "abcdef" == lines(capsys)[0]["event"]


def test_passwords_inside_urls_and_hook_urls_are_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feed = "https://reader:feed-pass-77@127.0.0.1/feed"
    database = "postgresql+psycopg://monitor:db-pass-88@127.0.0.1/news"
    hook = "http://127.0.0.1:9/services/T000/B000/hook-token-99"
    (tmp_path / "monitor.yaml").write_text(
        f"database: '{database}'\n"
        f"sources: [{{name: wire, type: feed, url: '{feed}'}}]\n"
        "watchlists: []\n"
        f"channels: {{chat: {{type: webhook, url: '{hook}'}}}}\n"
    )
    load(argparse.Namespace(config=tmp_path / "monitor.yaml"))
    configure_logging("json", "INFO")
    structlog.get_logger().error("poll_failed", error=f"HTTP 500 from {feed}", via=hook)
    logging.getLogger("sqlalchemy").error("cannot connect to %s", database)
    output = capsys.readouterr().err
    assert 2 == len(output.splitlines())
    for secret in ("feed-pass-77", "db-pass-88", "hook-token-99"):
        assert secret not in output
