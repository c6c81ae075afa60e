"""Done render records kept a moment (service.record_cache): a crowd's repeated reads of a done
record reach the records once a second, a change made here shows at once, and nothing but done
records is kept. The RenderRecords contract through it runs in tests/records/test_renders.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopmark.records import RenderRecord, RenderRecords, RenderStatus, open_render_records
from loopmark.service.record_cache import KeptDoneRecords

KEY = "a" * 24
OWNER = "worker-1"
MEDIA = {"gif": "r/aa/k/loop.gif", "width": 480, "height": 270}


class Counted:
    """A real SQLite adapter that counts the reads reaching it."""

    def __init__(self, records: RenderRecords) -> None:
        self.records = records
        self.reads = 0

    def get(self, key: str) -> RenderRecord | None:
        self.reads += 1
        return self.records.get(key)

    def purge_everything(self) -> int:  # an adapter's own extra (as retention's deletes are)
        return 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.records, name)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def counted(tmp_path: Path) -> Iterator[Counted]:
    records = open_render_records(f"sqlite:///{tmp_path / 'loopmark.db'}")
    records.setup()
    yield Counted(records)
    records.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def kept(counted: Counted, clock: Clock) -> KeptDoneRecords:
    return KeptDoneRecords(counted, keep_s=1.0, clock=clock)


def render_to_done(kept: KeptDoneRecords) -> None:
    kept.enqueue(KEY, template_id="small", caption="Hi", words_version=None)
    kept.claim_lease(KEY, owner=OWNER, template_id="small", caption="Hi", lease_seconds=60)
    assert kept.complete(KEY, owner=OWNER, media=MEDIA)


def test_a_done_record_is_read_once_a_second(
    kept: KeptDoneRecords, counted: Counted, clock: Clock
) -> None:
    render_to_done(kept)
    first = kept.get(KEY)
    assert first is not None and first.status == RenderStatus.DONE
    for _ in range(50):
        assert kept.get(KEY) == first
    assert counted.reads == 1
    clock.now += 1.0
    assert kept.get(KEY) == first
    assert counted.reads == 2


def test_a_record_not_done_is_read_every_time(kept: KeptDoneRecords, counted: Counted) -> None:
    assert kept.get(KEY) is None and kept.get(KEY) is None  # unknown
    kept.enqueue(KEY, template_id="small", caption="Hi", words_version=None)
    queued = [kept.get(KEY) for _ in range(3)]
    assert {r.status for r in queued if r is not None} == {RenderStatus.QUEUED}
    assert counted.reads == 5


def test_a_change_made_here_shows_at_once(kept: KeptDoneRecords, counted: Counted) -> None:
    render_to_done(kept)
    assert kept.get(KEY).status == RenderStatus.DONE  # type: ignore[union-attr]
    kept.block(KEY, reason="take-down")
    assert kept.get(KEY).status == RenderStatus.BLOCKED  # type: ignore[union-attr]
    assert counted.reads == 2


def test_another_ports_change_shows_within_a_second_or_when_forgotten(
    kept: KeptDoneRecords, counted: Counted, clock: Clock
) -> None:
    render_to_done(kept)
    assert kept.get(KEY).status == RenderStatus.DONE  # type: ignore[union-attr]
    counted.records.block(KEY, reason="from the command line")  # another process
    assert kept.get(KEY).status == RenderStatus.DONE  # type: ignore[union-attr]  # kept
    clock.now += 1.0
    assert kept.get(KEY).status == RenderStatus.BLOCKED  # type: ignore[union-attr]


def test_forget_and_an_adapters_own_methods_drop_what_is_kept(
    kept: KeptDoneRecords, counted: Counted
) -> None:
    render_to_done(kept)
    kept.get(KEY)
    kept.forget(KEY)
    kept.get(KEY)
    assert counted.reads == 2
    assert kept.purge_everything() == 0  # passed through...
    kept.get(KEY)
    assert counted.reads == 3  # ...and everything kept forgotten


def test_at_most_max_kept_records(counted: Counted, clock: Clock) -> None:
    kept = KeptDoneRecords(counted, keep_s=60, max_kept=2, clock=clock)
    keys = [c * 24 for c in "bcd"]
    for key in keys:
        kept.enqueue(key, template_id="small", caption=key, words_version=None)
        kept.claim_lease(key, owner=OWNER, template_id="small", caption=key, lease_seconds=60)
        kept.complete(key, owner=OWNER, media=MEDIA)
        kept.get(key)
    assert counted.reads == 3
    kept.get(keys[0])  # the oldest went out
    kept.get(keys[2])
    assert counted.reads == 4


def test_a_read_racing_a_take_down_is_not_kept(kept: KeptDoneRecords, counted: Counted) -> None:
    """A read that began before the block and returns after it holds the old "done": it is
    answered (it was true when read) but never kept, so the next read sees the block."""
    render_to_done(kept)
    read, release = threading.Event(), threading.Event()
    real_get = counted.get

    def slow_get(key: str) -> RenderRecord | None:
        record = real_get(key)
        read.set()
        release.wait(10)
        return record

    counted.get = slow_get  # type: ignore[method-assign]
    racing: list[RenderRecord | None] = []
    reader = threading.Thread(target=lambda: racing.append(kept.get(KEY)))
    reader.start()
    assert read.wait(10)
    kept.block(KEY, reason="take-down")
    release.set()
    reader.join(10)
    counted.get = real_get  # type: ignore[method-assign]
    assert racing[0] is not None and racing[0].status == RenderStatus.DONE
    assert kept.get(KEY).status == RenderStatus.BLOCKED  # type: ignore[union-attr]
