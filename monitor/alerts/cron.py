"""Digest schedules: APScheduler's cron trigger with cron's rule for the repeated hour.

When the clocks go back, a wall-clock time happens twice (01:30 EDT, then 01:30 EST).
APScheduler fires at both; cron runs a job at fixed times (neither minute nor hour a
``*`` field) once, at the first, and a job with ``*`` in those fields as usual. A daily
``30 1 * * *`` digest so goes out once that day, not twice an hour apart.

The weekday field is crontab's (0 or 7 is Sunday), not APScheduler's (0 is Monday): it is
handed over as day names, so ``0 7 * * 1-5`` goes out Monday to Friday.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger


class DigestTrigger(CronTrigger):  # type: ignore[misc]
    """A crontab schedule in ``timezone`` that skips the second pass of a repeated hour
    when it fires at fixed times."""

    def __init__(self, schedule: str, timezone: str) -> None:
        fields = schedule.split()
        if len(fields) != 5:
            raise ValueError(f"5 fields (minute hour day month weekday), not {len(fields)}")
        minute, hour, day, month, day_of_week = fields
        super().__init__(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=crontab_weekdays(day_of_week),
            timezone=timezone,
        )
        self.fixed_times = not minute.startswith("*") and not hour.startswith("*")

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        fire: datetime | None = super().get_next_fire_time(previous_fire_time, now)
        if fire is None or not self.fixed_times or not _second_pass(fire):
            return fire
        # From the end of the repeated hour: a minute at a time, because APScheduler's
        # arithmetic inside the second pass can come back to the same time.
        after = fire
        while _second_pass(after):
            after = (after.astimezone(UTC) + timedelta(minutes=1)).astimezone(fire.tzinfo)
        return self.get_next_fire_time(None, after.replace(second=0, microsecond=0))


WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def crontab_weekdays(field: str) -> str:
    """A crontab weekday field (numbers from Sunday = 0 or 7, names, ranges, steps, lists)
    as the day names APScheduler reads the same way whatever number it starts from."""
    if field == "*":
        return field
    days: set[int] = set()
    for part in field.lower().split(","):
        span, slash, step = part.partition("/")
        if span == "*":
            first, last = 0, 6
        else:
            low, dash, high = span.partition("-")
            first = _weekday(low)
            last = _weekday(high) if dash else 6 if slash else first
            if last < first:  # "fri-sun", "sat-0": to Sunday at the end of the week
                last += 7
        if slash and not step.isdigit():
            raise ValueError(f"weekday step {step!r} is not a number")
        days.update(day % 7 for day in range(first, last + 1, int(step) if slash else 1))
    if not days:
        raise ValueError(f"weekday field {field!r} names no day")
    return ",".join(WEEKDAYS[day] for day in sorted(days))


def _weekday(value: str) -> int:
    if value.isdigit() and int(value) <= 7:
        return int(value)
    if value in WEEKDAYS:
        return WEEKDAYS.index(value)
    raise ValueError(f"{value!r} is not a weekday (0-7 or sun-sat)")


def _second_pass(moment: datetime) -> bool:
    """Whether ``moment`` (local, aware) is the second time its wall-clock time happens."""
    return moment.fold == 1 and moment.replace(fold=0).utcoffset() != moment.utcoffset()
