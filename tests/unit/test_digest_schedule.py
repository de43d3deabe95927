"""Digest schedules read as crontab reads them: the weekday field counts from Sunday."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.alerts.digest import next_run
from monitor.config import DigestConfig

# Sunday 1 March 2026, noon UTC.
SUNDAY_NOON = datetime(2026, 3, 1, 12, tzinfo=UTC)


def firing_day(schedule: str, now: datetime = SUNDAY_NOON) -> str:
    digest = DigestConfig.model_validate(
        {"name": "weekly", "schedule": schedule, "channels": ["desk"]}
    )
    return f"{next_run(digest, 'UTC', now):%a %d %H:%M}"


@pytest.mark.parametrize(
    ("schedule", "fires"),
    [
        ("0 9 * * 1", "Mon 02 09:00"),  # crontab: 1 is Monday
        ("0 9 * * 0", "Sun 08 09:00"),  # 0 is Sunday (noon has passed this one)
        ("0 9 * * 7", "Sun 08 09:00"),  # and so is 7
        ("0 9 * * 1-5", "Mon 02 09:00"),
        ("0 9 * * 6", "Sat 07 09:00"),
        ("0 9 * * 5-7", "Fri 06 09:00"),
        ("0 9 * * */2", "Tue 03 09:00"),  # Sunday, Tuesday, Thursday, Saturday
        ("0 9 * * mon-fri", "Mon 02 09:00"),
        ("0 9 * * SAT,sun", "Sat 07 09:00"),
        ("0 13 * * *", "Sun 01 13:00"),
    ],
)
def test_the_weekday_field_is_crontabs(schedule: str, fires: str) -> None:
    assert fires == firing_day(schedule)


@pytest.mark.parametrize("weekday", ["8", "1-9", "*/0", "L", "mon-"])
def test_a_weekday_crontab_does_not_know_is_refused(weekday: str) -> None:
    with pytest.raises(ValueError, match="not a cron schedule"):
        firing_day(f"0 9 * * {weekday}")


@pytest.mark.parametrize(
    ("schedule", "now", "fires"),
    [
        ("0 9 1 * 1", SUNDAY_NOON, "Mon 02 09:00"),  # a Monday before the next 1st
        ("0 9 1 * 1", datetime(2026, 3, 30, 12, tzinfo=UTC), "Wed 01 09:00"),  # 1 April
        ("0 9 13 * 5", SUNDAY_NOON, "Fri 06 09:00"),  # any Friday, or any 13th
        ("0 9 13 * 5", datetime(2026, 3, 7, 12, tzinfo=UTC), "Fri 13 09:00"),
        ("0 9 4 * 5", SUNDAY_NOON, "Wed 04 09:00"),  # the 4th comes before the Friday
        # A field starting with "*" counts as unrestricted: then both must match.
        ("0 9 */10 * 1", SUNDAY_NOON, "Mon 11 09:00"),  # 11 May: a Monday on 1, 11, 21, 31
        ("0 9 1 * */2", SUNDAY_NOON, "Sat 01 09:00"),  # 1 August: the 1st, a Saturday
        ("0 9 * * 1", SUNDAY_NOON, "Mon 02 09:00"),
        ("0 9 15 * *", SUNDAY_NOON, "Sun 15 09:00"),
    ],
)
def test_a_day_of_the_month_and_a_weekday_fire_on_either(
    schedule: str, now: datetime, fires: str
) -> None:
    """Cron's rule: when both fields are restricted, a day that matches either fires."""
    assert fires == firing_day(schedule, now)
