"""A channel the config validates but that cannot be built (a webhook secret that is not
``whsec_...``) is named at its line, by `check` and `run` alike: ``file:line: message``."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.cli import main

CONFIG = """\
database: sqlite:///db.sqlite
watchlists:
  - {name: pact, query: GSOMIA, channels: [chat]}
channels:
  box: {type: console}
  chat:
    type: webhook
    url: http://127.0.0.1:9/hook
    secret: not-a-standard-webhooks-secret
"""


@pytest.mark.parametrize("command", [["check"], ["run", "--once"]])
def test_a_channel_that_cannot_be_built_is_named_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(CONFIG)
    assert 2 == main([*command, "-c", str(path)])
    assert f"{path}:6: channel 'chat': secret must be 'whsec_'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://[::1/hook", "Invalid IPv6 URL"),
        ("http://127.0.0.1:99999/hook", "Port out of range"),
        ("http:///hook", "no host"),
    ],
)
def test_a_webhook_url_that_does_not_parse_is_refused_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str, said: str
) -> None:
    """Not a ValueError traceback (exit 1) from the channel's construction."""
    path = tmp_path / "monitor.yaml"
    path.write_text(CONFIG.replace("http://127.0.0.1:9/hook", url))
    assert 2 == main(["check", "-c", str(path)])
    err = capsys.readouterr().err
    assert f"{path}:8: channels.chat.url: not a URL: {said}" in err
    assert "Traceback" not in err
