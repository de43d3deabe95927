"""Quiet hours and rate caps as decisions: when a delivery is held, until when, as what."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from monitor.alerts.noise import DIGEST_GRACE, HOUR, OVERFLOW, Hold, NoiseControl, quiet_until
from monitor.config import MonitorConfig, QuietHours
from monitor.store.repo import ChannelSends, DeliveryJob

SEOUL = ZoneInfo("Asia/Seoul")
NOW = datetime(2026, 11, 27, 12, 30, tzinfo=UTC)  # 21:30 in Seoul


@dataclass
class FakeSends:
    """Stands in for the store: how many instant alerts each channel sent this hour."""

    sends: dict[str, ChannelSends] = field(default_factory=dict)
    asked: list[tuple[str, datetime]] = field(default_factory=list)

    def channel_sends(self, channel: str, *, since: datetime) -> ChannelSends:
        self.asked.append((channel, since))
        return self.sends.get(channel, ChannelSends(0, None))


def job(channel: str = "chat", kind: str = "instant", n: int = 1) -> DeliveryJob:
    return DeliveryJob(n, f"s{n}.w.{channel}", kind, channel, "", "w", n, {}, 0)


def noise(
    channel: dict[str, Any], *, digests: list[dict[str, Any]] = (), sends: FakeSends | None = None
) -> NoiseControl:
    config = MonitorConfig.model_validate(
        {
            "timezone": "Asia/Seoul",
            "channels": {"chat": {"type": "console", **channel}},
            "digests": list(digests),
        }
    )
    return NoiseControl(config, sends or FakeSends(), now=NOW)


def local(hour: int, minute: int = 0, day: int = 27) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SEOUL)


@pytest.mark.parametrize(
    ("start", "end", "now", "until"),
    [
        (time(22), time(7), local(23), local(7, day=28)),  # wraps midnight, before it
        (time(22), time(7), local(3), local(7)),  # wraps midnight, after it
        (time(22), time(7), local(7), None),  # the end is open
        (time(22), time(7), local(12), None),
        (time(12), time(14), local(13, 59), local(14)),
        (time(12), time(14), local(14, 1), None),
        (time(9), time(9), local(9), None),  # an empty window
    ],
)
def test_quiet_window(start: time, end: time, now: datetime, until: datetime | None) -> None:
    held = quiet_until(QuietHours(start=start, end=end), SEOUL, now.astimezone(UTC))

    assert until == held
    assert held is None or UTC == held.tzinfo


def test_quiet_hours_hold_instant_alerts_until_they_end() -> None:
    control = noise({"quiet_hours": {"start": "21:00", "end": "06:30"}})

    assert Hold(local(6, 30, day=28), "instant", "quiet_hours") == control.check(job())


def test_quiet_hours_use_their_own_zone_when_given() -> None:
    control = noise({"quiet_hours": {"start": "21:00", "end": "06:30", "timezone": "UTC"}})

    assert control.check(job()) is None  # 12:30 UTC


def test_digests_are_never_held() -> None:
    control = noise({"quiet_hours": {"start": "21:00", "end": "06:30"}, "max_per_hour": 1})

    assert control.check(job(kind="digest")) is None


def test_under_the_cap_sends_and_counts_its_own_batch() -> None:
    sends = FakeSends({"chat": ChannelSends(1, NOW - timedelta(minutes=50))})
    control = noise({"max_per_hour": 3}, sends=sends)

    assert control.check(job(n=1)) is None
    control.record_sent(job(n=1))
    assert control.check(job(n=2)) is None
    control.record_sent(job(n=2))
    held = control.check(job(n=3))

    assert held is not None
    assert "rate_cap" == held.reason
    assert [("chat", NOW - HOUR)] == sends.asked  # one query per channel per batch


def test_overflow_rolls_into_the_next_digest_on_the_channel() -> None:
    sends = FakeSends({"chat": ChannelSends(2, NOW - timedelta(minutes=10))})
    digests = [
        {"name": "evening", "schedule": "0 22 * * *", "channels": ["chat"]},
        {"name": "weekly", "schedule": "0 9 * * 1", "channels": ["chat"]},
    ]
    control = noise({"max_per_hour": 2}, digests=digests, sends=sends)

    assert Hold(local(22) + DIGEST_GRACE, OVERFLOW, "rate_cap") == control.check(job())


def test_overflow_without_a_digest_waits_for_room_in_the_hour() -> None:
    oldest = NOW - timedelta(minutes=40)
    control = noise({"max_per_hour": 2}, sends=FakeSends({"chat": ChannelSends(2, oldest)}))

    assert Hold(oldest + HOUR, "instant", "rate_cap") == control.check(job())


def test_channels_without_settings_are_left_alone() -> None:
    sends = FakeSends()
    control = noise({}, sends=sends)

    assert control.check(job()) is None
    assert control.check(job(channel="gone")) is None
    assert [] == sends.asked
