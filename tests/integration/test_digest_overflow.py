"""Rate-cap overflow that a digest carried, taken in by another digest on the channel."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from servers import SmtpServer
from test_outbox_noise import WATCHLISTS, desk, polled

from monitor.alerts.digest import run_digest
from monitor.alerts.outbox import DeliveryReport, deliver_due
from monitor.text import utc_now


@pytest.fixture
def mail() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


def test_an_overflow_carried_by_one_digest_is_not_shown_by_another_on_its_channel(
    tmp_path: Path, mail: SmtpServer
) -> None:
    capped, other_digest = _evening_then_costs(tmp_path, mail, evening_on="desk")

    assert (2, 2) == (capped.sent, capped.held)  # the evening digest and one instant alert
    assert 0 == other_digest  # the two capped stories were in the evening digest


def test_an_overflow_carried_by_a_digest_on_another_channel_is_still_shown(
    tmp_path: Path, mail: SmtpServer
) -> None:
    capped, other_digest = _evening_then_costs(tmp_path, mail, evening_on="box")

    assert (2, 2) == (capped.sent, capped.held)  # the evening digest and one instant alert
    assert 1 == other_digest  # desk's reader never saw the evening digest


def _evening_then_costs(
    tmp_path: Path, mail: SmtpServer, *, evening_on: str
) -> tuple[DeliveryReport, int]:
    """gsomia alerts at once and in the "evening" digest (on ``evening_on``); the desk
    channel is capped at one alert an hour, and a "costs" digest also sends to it. The
    evening digest closes, the outbox runs, then the costs digest closes: what the
    outbox did, and the deliveries the costs digest queued."""
    watchlists = [{**WATCHLISTS[0], "alert": "both"}, WATCHLISTS[1]]
    evening = {"name": "evening", "schedule": "0 22 * * *", "channels": [evening_on]}
    costs = {"name": "costs", "schedule": "0 7 * * *", "channels": ["desk"]}
    box = {"type": "maildir", "path": str(tmp_path / "box"), "to": ["desk@example.org"]}
    config = {
        "channels": {"desk": desk(mail, max_per_hour=1), "box": box},
        "digests": [evening, {**costs, "watchlists": ["costs"]}],
        "watchlists": watchlists,
    }
    with polled(tmp_path, **config) as app:
        now = utc_now()
        assert 1 == run_digest(app, "evening", now=now + timedelta(minutes=1))
        capped = deliver_due(app, now=now + timedelta(minutes=2))
        return capped, run_digest(app, "costs", now=now + timedelta(hours=9))
