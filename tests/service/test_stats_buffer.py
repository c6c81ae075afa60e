"""Statistics gathered in memory and written in the background, never on the request path."""

from __future__ import annotations

import time
from pathlib import Path

from loopmark.errors import RecordsUnavailable
from loopmark.records.stats import open_stats_records
from loopmark.service.stats_buffer import BufferedStats

BOUND_SECONDS = 30.0


def test_counts_are_summed_and_written_in_the_background(tmp_path: Path) -> None:
    records = open_stats_records(f"sqlite:///{tmp_path / 'stats.db'}")
    records.setup()
    buffered = BufferedStats(records, flush_s=0.05)
    for _ in range(5):
        buffered.count(template_id="wake-up", event="cache_hit", caption="Hi")
    buffered.count(template_id="wake-up", event="render", caption="Hi")
    deadline = time.monotonic() + BOUND_SECONDS
    while records.cache_hit_rate(days=1) is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    buffered.close()
    assert records.renders_per_day(days=1)[0][1:] == ("wake-up", 1)
    assert records.cache_hit_rate(days=1) == 5 / 6
    assert records.top_captions(days=1) == [("hi", 6)]


class Flaky:
    """A StatsRecords whose backend is down for the first write."""

    def __init__(self) -> None:
        self.calls: list[dict[str, object]] = []
        self.down = True

    def count(self, **kwargs: object) -> None:
        if self.down:
            self.down = False
            raise RecordsUnavailable("down")
        self.calls.append(kwargs)


def test_an_outage_keeps_the_counts_for_the_next_flush() -> None:
    flaky = Flaky()
    buffered = BufferedStats(flaky, flush_s=3600)  # type: ignore[arg-type]
    buffered.count(template_id="wake-up", event="render")
    buffered.count(template_id="wake-up", event="render")
    buffered.flush()
    assert flaky.calls == []
    buffered.flush()
    assert [c["amount"] for c in flaky.calls] == [2]


def test_malformed_counts_are_dropped_not_retried(tmp_path: Path) -> None:
    records = open_stats_records(f"sqlite:///{tmp_path / 'stats.db'}")
    records.setup()
    buffered = BufferedStats(records, flush_s=3600)
    buffered.count(template_id="Not An Id", event="render")
    buffered.flush()
    buffered.flush()
    assert buffered._pending == {}
