"""Noise control: quiet hours and per-channel rate caps, decided before each send.

Decisions only: the outbox applies a ``Hold`` with ``Store.reschedule``, which moves a
delivery to later without counting an attempt. Digests are never held; they are where
held-back alerts go.

- ``quiet_hours``: an instant alert waits until the quiet window ends (local time in the
  window's zone, else the config's; a window may wrap midnight, ``start == end`` is none).
- ``max_per_hour``: once a channel sent that many instant alerts in the last hour, the
  next ones become ``overflow`` and wait for the next digest that sends to that channel,
  which takes them in when it closes its window (``Store.close_digest_window``). With no
  such digest, or if it did not run, they go out as soon as the hour has room, and so
  do capped health notices, which have no match for a digest to show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from monitor.alerts.digest import next_run
from monitor.config import ChannelConfig, DigestConfig, MonitorConfig, QuietHours
from monitor.store.repo import ChannelSends, DeliveryJob

OVERFLOW = "overflow"
HOUR = timedelta(hours=1)
# The digest job gets the first go at an overflow; after this the delivery worker sees
# it again (a digest that did not run must not strand it).
DIGEST_GRACE = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Hold:
    """Do not send now: move the delivery to ``until`` as ``kind``."""

    until: datetime
    kind: str
    reason: Literal["quiet_hours", "rate_cap"]


class SendCounter(Protocol):
    def channel_sends(self, channel: str, *, since: datetime) -> ChannelSends: ...


def quiet_until(quiet: QuietHours, zone: ZoneInfo, now: datetime) -> datetime | None:
    """When the quiet window that ``now`` falls in ends (UTC), or None outside one."""
    start, end = quiet.start.replace(tzinfo=None), quiet.end.replace(tzinfo=None)
    local = now.astimezone(zone)
    moment = local.time().replace(tzinfo=None)
    if start == end:
        return None
    if start < end:
        inside, days = start <= moment < end, 0
    else:
        inside, days = moment >= start or moment < end, 1 if moment >= start else 0
    if not inside:
        return None
    ends = datetime.combine(local.date() + timedelta(days=days), end, tzinfo=zone)
    return ends.astimezone(UTC)


class NoiseControl:
    """Decisions for one delivery batch; counts the batch's own sends against caps."""

    def __init__(self, config: MonitorConfig, counter: SendCounter, *, now: datetime) -> None:
        self.channels: dict[str, ChannelConfig] = dict(config.channels)
        self.digests: Sequence[DigestConfig] = config.digests
        self.timezone = config.timezone
        self.counter = counter
        self.now = now
        self._sends: dict[str, ChannelSends] = {}

    def check(self, job: DeliveryJob) -> Hold | None:
        """None to send ``job`` now, else how long to hold it."""
        channel = self.channels.get(job.channel)
        if channel is None or job.kind == "digest":
            return None
        if channel.quiet_hours is not None:
            zone = ZoneInfo(channel.quiet_hours.timezone) if channel.quiet_hours.timezone else None
            until = quiet_until(channel.quiet_hours, zone or ZoneInfo(self.timezone), self.now)
            if until is not None:
                return Hold(until, job.kind, "quiet_hours")
        if channel.max_per_hour is not None:
            sends = self._window(job.channel)
            if sends.count >= channel.max_per_hour:
                return self._overflow(job, sends)
        return None

    def record_sent(self, job: DeliveryJob) -> None:
        """Count a send of this batch against its channel's cap."""
        if job.kind == "digest" or job.channel not in self._sends:
            return
        sends = self._sends[job.channel]
        self._sends[job.channel] = replace(
            sends, count=sends.count + 1, oldest=sends.oldest or self.now
        )

    def _window(self, channel: str) -> ChannelSends:
        if channel not in self._sends:
            self._sends[channel] = self.counter.channel_sends(channel, since=self.now - HOUR)
        return self._sends[channel]

    def _overflow(self, job: DeliveryJob, sends: ChannelSends) -> Hold:
        # Only an alert has a match a digest can show: a health notice waits for room.
        runs = [
            next_run(digest, self.timezone, self.now)
            for digest in self.digests
            if job.channel in digest.channels and job.match_id is not None
        ]
        if runs:
            return Hold(min(runs) + DIGEST_GRACE, OVERFLOW, "rate_cap")
        return Hold((sends.oldest or self.now) + HOUR, job.kind, "rate_cap")
