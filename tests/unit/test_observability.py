"""Metric recording and the scrape-time store collector (no server, no database)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.alerts.outbox import DeliveryReport
from monitor.observability import StoreCollector, job_kind, record_deliveries, record_poll
from monitor.pipeline import PollOutcome
from monitor.store.repo import SourceState

SUCCESS = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_poll_counts_its_outcome_items_and_matches() -> None:
    before = (
        sample("monitor_polls_total", source="unit-a", outcome="ok"),
        sample("monitor_items_total", source="unit-a"),
        sample("monitor_matches_total", watchlist="unit-w"),
        sample("monitor_poll_duration_seconds_count"),
    )
    record_poll(PollOutcome("unit-a", new=3, matched_watchlists=["unit-w", "unit-w"]), 0.2)
    after = (
        sample("monitor_polls_total", source="unit-a", outcome="ok"),
        sample("monitor_items_total", source="unit-a"),
        sample("monitor_matches_total", watchlist="unit-w"),
        sample("monitor_poll_duration_seconds_count"),
    )
    assert (1, 3, 2, 1) == tuple(b - a for a, b in zip(before, after, strict=True))


def test_a_failed_poll_is_an_error_and_a_skipped_one_is_not_timed() -> None:
    errors = sample("monitor_errors_total", kind="source")
    timed = sample("monitor_poll_duration_seconds_count")
    record_poll(PollOutcome("unit-b", ok=False, error="boom"), 1.0)
    record_poll(PollOutcome("unit-b", skipped=True), 0.0)
    assert 1 == sample("monitor_polls_total", source="unit-b", outcome="failed")
    assert 1 == sample("monitor_polls_total", source="unit-b", outcome="skipped")
    assert errors + 1 == sample("monitor_errors_total", kind="source")
    assert timed + 1 == sample("monitor_poll_duration_seconds_count")


@pytest.mark.parametrize(("outcome", "error"), [("sent", 0), ("retried", 1), ("dead", 1)])
def test_deliveries_by_channel_and_outcome(
    outcome: Literal["sent", "retried", "dead"], error: int
) -> None:
    errors = sample("monitor_errors_total", kind="delivery")
    report = DeliveryReport()
    report.attempted("unit-box", outcome)
    report.attempted("unit-box", outcome)
    report.attempted("unit-other", "sent")
    record_deliveries(report)
    assert 2 == sample("monitor_deliveries_total", channel="unit-box", outcome=outcome)
    assert errors + 2 * error == sample("monitor_errors_total", kind="delivery")


@pytest.mark.parametrize(
    ("job_id", "kind"),
    [("source:seeds", "source"), ("digest:morning", "digest"), ("deliver", "deliver")],
)
def test_job_labels_are_kinds_not_names(job_id: str, kind: str) -> None:
    assert kind == job_kind(job_id)


class FakeStore:
    """Answers the two questions the collector asks; ``down`` makes it fail as a
    database that went away does."""

    def __init__(self, *, down: bool = False) -> None:
        self.down = down

    def outbox_counts(self, *, now: datetime) -> dict[str, int]:
        if self.down:
            raise ConnectionError("database went away")
        return {"pending": 5, "due": 2, "sent": 40, "dead": 1}

    def source_states(self) -> list[SourceState]:
        return [
            SourceState("fine", {}, health="healthy", last_success=SUCCESS),
            SourceState("broken", {}, health="failing"),
        ]


def scrape(store: FakeStore) -> dict[tuple[str, str], float]:
    """Samples as {(name, the one label's value or ""): value}."""
    text = generate_latest(StoreCollector(lambda: store)).decode()
    return {
        (sample.name, next(iter(sample.labels.values()), "")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_collector_reads_outbox_depth_and_source_health() -> None:
    samples = scrape(FakeStore())
    assert {
        ("monitor_store_up", ""): 1,
        ("monitor_outbox_deliveries", "pending"): 5,
        ("monitor_outbox_deliveries", "due"): 2,
        ("monitor_outbox_deliveries", "dead"): 1,
        ("monitor_source_healthy", "fine"): 1,
        ("monitor_source_healthy", "broken"): 0,
        ("monitor_source_last_success_timestamp_seconds", "fine"): SUCCESS.timestamp(),
    } == samples


def test_collector_says_the_store_is_down_instead_of_failing() -> None:
    assert {("monitor_store_up", ""): 0} == scrape(FakeStore(down=True))
