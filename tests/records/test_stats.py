"""The StatsRecords contract, run against every adapter (a SQLite file, DynamoDB on moto).

Also :func:`loopmark.records.setup_all`, which the statistics' DynamoDB index depends on.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from loopmark.errors import BadInput
from loopmark.records import (
    StatsRecords,
    open_gallery_records,
    open_render_records,
    open_stats_records,
    open_user_records,
    open_word_records,
    setup_all,
)
from loopmark.records.dynamodb import RECENT_INDEX, TTL_ATTRIBUTE
from loopmark.records.stats import (
    CAPTION_STAT_CHARS,
    CAPTION_STATS_KEEP_DAYS,
    CAPTIONS_INDEX,
    MAX_CAPTION_DAYS,
    MAX_STATS_DAYS,
    MAX_TOP_CAPTIONS,
    day_start,
    utc_day,
)
from tests.records.conftest import FakeClock, assert_opening_connects_to_nothing, race, set_up

# FakeClock starts at 1_700_000_000: 2023-11-14 22:13:20 UTC.
TODAY = "2023-11-14"
YESTERDAY = "2023-11-13"
DAY = 86_400.0


@pytest.fixture
def stats(records_url: str, clock: FakeClock) -> Iterator[StatsRecords]:
    yield from set_up(open_stats_records(records_url, clock=clock))


def test_nothing_counted_yet(stats: StatsRecords) -> None:
    assert stats.renders_per_day() == []
    assert stats.cache_hit_rate() is None
    assert stats.top_captions() == []


def test_renders_per_day_by_day_then_template(stats: StatsRecords) -> None:
    for _ in range(3):
        stats.count(template_id="bunny", event="render")
    stats.count(template_id="cat", event="render", day=YESTERDAY)
    stats.count(template_id="bunny", event="render", day=YESTERDAY)
    stats.count(template_id="aardvark", event="render")
    stats.count(template_id="dog", event="cache_hit")  # hits are not renders
    assert stats.renders_per_day() == [
        (YESTERDAY, "bunny", 1),
        (YESTERDAY, "cat", 1),
        (TODAY, "aardvark", 1),
        (TODAY, "bunny", 3),
    ]


def test_the_window_ends_today_in_utc(stats: StatsRecords, clock: FakeClock) -> None:
    stats.count(template_id="bunny", event="render", day="2023-11-01")  # 13 days ago
    stats.count(template_id="bunny", event="render", day="2023-10-31")  # 14 days ago
    stats.count(template_id="bunny", event="render", day="2023-11-15")  # tomorrow
    assert stats.renders_per_day() == [("2023-11-01", "bunny", 1)]
    assert stats.renders_per_day(days=1) == []
    assert [row[0] for row in stats.renders_per_day(days=15)] == ["2023-10-31", "2023-11-01"]
    clock.advance(2 * 3600)  # past midnight UTC: "today" is the 15th
    stats.count(template_id="bunny", event="render")
    assert stats.renders_per_day(days=1) == [("2023-11-15", "bunny", 2)]


def test_cache_hit_rate(stats: StatsRecords) -> None:
    stats.count(template_id="bunny", event="render")
    assert stats.cache_hit_rate() == 0.0
    for _ in range(2):
        stats.count(template_id="bunny", event="cache_hit")
    stats.count(template_id="cat", event="cache_hit")
    assert stats.cache_hit_rate() == 0.75
    stats.count(template_id="cat", event="cache_hit", day="2023-10-01")  # outside 14 days
    stats.count(template_id="cat", event="render", day="2023-10-01")
    assert stats.cache_hit_rate() == 0.75
    assert stats.cache_hit_rate(days=60) == 4 / 6


def test_top_captions_are_folded_and_ranked(stats: StatsRecords) -> None:
    for caption in ("Happy Friday", "HAPPY   friday", "happy friday", "Straße", "STRASSE"):
        stats.count(template_id="bunny", event="render", caption=caption)
    stats.count(template_id="cat", event="cache_hit", caption="Hello #1")
    stats.count(template_id="cat", event="cache_hit", caption="Hello #1", day=YESTERDAY)
    stats.count(template_id="cat", event="render", caption="Zebra")
    stats.count(template_id="cat", event="render", caption="apple")
    stats.count(template_id="cat", event="render", caption=None)
    stats.count(template_id="cat", event="render", caption="")
    assert stats.top_captions() == [
        ("happy friday", 3),
        ("hello #1", 2),
        ("strasse", 2),
        ("apple", 1),
        ("zebra", 1),
    ]
    assert stats.top_captions(limit=2) == [("happy friday", 3), ("hello #1", 2)]
    assert stats.top_captions(days=1) == [
        ("happy friday", 3),
        ("strasse", 2),
        ("apple", 1),
        ("hello #1", 1),
        ("zebra", 1),
    ]


def test_top_captions_window(stats: StatsRecords) -> None:
    stats.count(template_id="bunny", event="render", caption="old", day="2023-10-15")  # 30 ago
    stats.count(template_id="bunny", event="render", caption="recent", day="2023-10-16")  # 29
    assert stats.top_captions() == [("recent", 1)]
    assert stats.top_captions(days=31) == [("old", 1), ("recent", 1)]


def test_a_long_caption_is_counted_cut_short(stats: StatsRecords) -> None:
    long = "Ä" * 50 + " " + "b" * 100
    stats.count(template_id="bunny", event="render", caption=long)
    stats.count(template_id="bunny", event="render", caption=long.lower() + " and more")
    assert stats.top_captions() == [(("ä" * 50 + " " + "b" * 100)[:CAPTION_STAT_CHARS], 2)]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"event": "share"},
        {"event": "RENDER"},
        {"template_id": ""},
        {"template_id": "x" * 65},
        {"template_id": "bad\nid"},
        {"day": "2023-13-01"},
        {"day": "2023-02-30"},
        {"day": "2023-1-1"},
        {"day": "yesterday"},
        {"day": "2023-11-14T00:00"},
    ],
)
def test_bad_counts_are_refused(stats: StatsRecords, kwargs: dict[str, Any]) -> None:
    arguments = {"template_id": "bunny", "event": "render", "caption": "hi", **kwargs}
    with pytest.raises(BadInput):
        stats.count(**arguments)
    assert stats.renders_per_day(days=MAX_STATS_DAYS) == []
    assert stats.top_captions() == []


@pytest.mark.parametrize("days", [0, -1, MAX_STATS_DAYS + 1, True, 1.5])
def test_bad_windows_are_refused(stats: StatsRecords, days: Any) -> None:
    with pytest.raises(BadInput):
        stats.renders_per_day(days=days)
    with pytest.raises(BadInput):
        stats.cache_hit_rate(days=days)
    with pytest.raises(BadInput):
        stats.top_captions(days=days)


def test_caption_windows_and_limits_are_bounded(stats: StatsRecords) -> None:
    assert stats.top_captions(days=MAX_CAPTION_DAYS, limit=MAX_TOP_CAPTIONS) == []
    assert stats.renders_per_day(days=MAX_STATS_DAYS) == []
    for kwargs in ({"days": MAX_CAPTION_DAYS + 1}, {"limit": 0}, {"limit": MAX_TOP_CAPTIONS + 1}):
        with pytest.raises(BadInput):
            stats.top_captions(**kwargs)


def test_setup_is_idempotent(stats: StatsRecords) -> None:
    stats.count(template_id="bunny", event="render", caption="hi")
    stats.setup()
    assert stats.renders_per_day() == [(TODAY, "bunny", 1)]
    assert stats.top_captions() == [("hi", 1)]


def test_opening_connects_to_nothing(tmp_path: Path) -> None:
    assert_opening_connects_to_nothing(open_stats_records, tmp_path, "dynamodb://")


def test_dynamodb_caption_counts_expire_and_use_their_index(aws: str, clock: FakeClock) -> None:
    open_render_records("dynamodb://loopmark-test").setup()  # a table made before statistics
    stats = open_stats_records("dynamodb://loopmark-test", clock=clock)
    stats.setup()  # adds the index the table lacks
    stats.count(template_id="bunny", event="render", caption="Hi")
    client = boto3.client("dynamodb")
    item = client.get_item(
        TableName="loopmark-test", Key={"key": {"S": f"stats#caption#{TODAY}#hi"}}
    )
    expires_at = int(item["Item"][TTL_ATTRIBUTE]["N"])
    assert expires_at == day_start(TODAY) + CAPTION_STATS_KEEP_DAYS * 86_400
    assert expires_at > clock() + MAX_CAPTION_DAYS * DAY  # never inside a window still shown
    table = client.describe_table(TableName="loopmark-test")["Table"]
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {
        RECENT_INDEX,
        CAPTIONS_INDEX,
    }
    assert stats.top_captions() == [("hi", 1)]


@pytest.fixture
def racing_stats(racing_records_url: str, clock: FakeClock) -> Iterator[StatsRecords]:
    yield from set_up(open_stats_records(racing_records_url, clock=clock))


def test_counts_from_ten_threads_all_land(racing_stats: StatsRecords) -> None:
    stats = racing_stats

    def burst(i: int) -> None:
        event = "render" if i % 2 else "cache_hit"
        for _ in range(10):
            stats.count(template_id="bunny", event=event, caption="Same caption")

    race(10, burst)
    assert stats.renders_per_day() == [(TODAY, "bunny", 50)]
    assert stats.cache_hit_rate() == 0.5
    assert stats.top_captions() == [("same caption", 100)]


def test_setup_all_prepares_every_record_type(records_url: str, clock: FakeClock) -> None:
    setup_all(records_url)
    setup_all(records_url)  # idempotent
    render = open_render_records(records_url, clock=clock)
    gallery = open_gallery_records(records_url, clock=clock)
    words = open_word_records(records_url, clock=clock)
    users = open_user_records(records_url, clock=clock)
    stats = open_stats_records(records_url, clock=clock)
    try:
        assert render.get("k") is None
        assert gallery.entries() == [] and gallery.version() == 0
        assert words.version() == 0
        users.put("alice", "hash")
        assert [u.name for u in users.all()] == ["alice"]
        stats.count(template_id="bunny", event="render", caption="hi")
        assert stats.top_captions() == [("hi", 1)]
    finally:
        for records in (render, gallery, words, users, stats):
            records.close()


def test_a_count_can_add_several_at_once(stats: StatsRecords) -> None:
    stats.count(template_id="wake-up", event="render", caption="Hi", amount=3)
    stats.count(template_id="wake-up", event="render", caption="Hi")
    assert [(t, n) for _, t, n in stats.renders_per_day(days=1)] == [("wake-up", 4)]
    assert stats.top_captions(days=1) == [("hi", 4)]
    with pytest.raises(BadInput):
        stats.count(template_id="wake-up", event="render", amount=0)


@pytest.mark.parametrize(
    "epoch", [0.0, 86_399.999, 86_400.0, -0.5, -86_400.0, 1_764_633_599.9999, 1_764_633_600.0]
)
def test_utc_day_is_the_calendar_day_in_utc(epoch: float) -> None:
    assert utc_day(epoch) == datetime.fromtimestamp(epoch, UTC).date().isoformat()
