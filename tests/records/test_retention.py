"""The RetentionRecords contract, run against every adapter (a SQLite file, DynamoDB on moto)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from loopmark.records import RenderRecords, open_render_records
from loopmark.records.retention import (
    DEAD_RECORD_KEEP_SECONDS,
    RetentionRecords,
    open_retention_records,
)
from tests.records.conftest import START, FakeClock, set_up

KEY = "a" * 24
OTHER = "b" * 24


@pytest.fixture
def renders(records_url: str, clock: FakeClock) -> Iterator[RenderRecords]:
    yield from set_up(open_render_records(records_url, clock=clock))


@pytest.fixture
def retention(
    records_url: str, clock: FakeClock, renders: RenderRecords
) -> Iterator[RetentionRecords]:
    yield from set_up(open_retention_records(records_url, clock=clock))


def make_done(renders: RenderRecords, key: str) -> float:
    renders.claim_lease(key, owner="w", template_id="t", caption="c", lease_seconds=10)
    assert renders.complete(key, owner="w", media={"width": 1, "height": 1})
    record = renders.get(key)
    assert record is not None
    return record.updated_at


def test_touch_keeps_the_latest_hit(retention: RetentionRecords) -> None:
    assert retention.last_hits([KEY, OTHER]) == {}
    retention.touch([KEY, OTHER], START + 10)
    retention.touch([KEY], START + 5)  # an older hit written late never moves it back
    retention.touch([OTHER], START + 20)
    assert retention.last_hits([KEY, OTHER, "c" * 24]) == {KEY: START + 10, OTHER: START + 20}


def test_forget_render_deletes_a_done_record_unchanged_since(
    retention: RetentionRecords, renders: RenderRecords, clock: FakeClock
) -> None:
    updated_at = make_done(renders, KEY)
    retention.touch([KEY], START)
    assert not retention.forget_render(KEY, updated_at=updated_at - 1)  # changed since
    renders.block(OTHER, reason="gone")
    assert not retention.forget_render(OTHER, updated_at=START)  # blocked: never forgotten
    assert retention.forget_render(KEY, updated_at=updated_at)
    assert renders.get(KEY) is None
    assert retention.last_hits([KEY]) == {}
    assert renders.get(OTHER) is not None


def test_forget_dead_deletes_old_failed_records_on_sqlite(
    retention: RetentionRecords, renders: RenderRecords, clock: FakeClock, records_url: str
) -> None:
    renders.claim_lease(KEY, owner="w", template_id="t", caption="c", lease_seconds=10)
    renders.fail(KEY, owner="w", error="boom")
    make_done(renders, OTHER)
    clock.advance(DEAD_RECORD_KEEP_SECONDS + 1)
    older_than = clock() - DEAD_RECORD_KEEP_SECONDS
    expected = 1 if records_url.startswith("sqlite") else 0  # DynamoDB: TTL does it
    assert retention.forget_dead(older_than=older_than, dry_run=True) == expected
    assert retention.forget_dead(older_than=older_than) == expected
    assert (renders.get(KEY) is None) == (expected == 1)
    assert renders.get(OTHER) is not None
