"""Digest schedules: APScheduler's cron trigger with cron's rule for the repeated hour.

When the clocks go back, a wall-clock time happens twice (01:30 EDT, then 01:30 EST).
APScheduler fires at both; cron runs a job at fixed times (neither minute nor hour a
``*`` field) once, at the first, and a job with ``*`` in those fields as usual. A daily
``30 1 * * *`` digest so goes out once that day, not twice an hour apart.

The weekday field is crontab's (0 or 7 is Sunday), not APScheduler's (0 is Monday): it is
handed over as day names, so ``0 7 * * 1-5`` goes out Monday to Friday. And as in cron,
when both the day of the month and the weekday are restricted (neither field starts with
``*``), either will do: ``0 9 1 * 1`` goes out on the 1st and on every Monday, where
APScheduler alone would wait for a Monday the 1st.
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
        weekdays = crontab_weekdays(day_of_week)
        either = not day.startswith("*") and not day_of_week.startswith("*")
        times = {"minute": minute, "hour": hour, "month": month, "timezone": timezone}
        # With both restricted, this trigger keeps the days of the month; the weekdays
        # get one of their own, and the sooner of the two fires.
        super().__init__(day=day, day_of_week="*" if either else weekdays, **times)
        self.on_weekdays = CronTrigger(day_of_week=weekdays, **times) if either else None
        self.fixed_times = not minute.startswith("*") and not hour.startswith("*")

    def _sooner(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        fire: datetime | None = super().get_next_fire_time(previous_fire_time, now)
        if self.on_weekdays is None:
            return fire
        other: datetime | None = self.on_weekdays.get_next_fire_time(previous_fire_time, now)
        return other if fire is None or (other is not None and other < fire) else fire

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        fire = self._sooner(previous_fire_time, now)
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
