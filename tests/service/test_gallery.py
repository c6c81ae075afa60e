"""The in-memory gallery: loaded once, refreshed by a cheap version check and a periodic
reload, written through at once, safe under threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopmark.errors import RecordsUnavailable
from loopmark.records import RenderRecord, RenderStatus
from loopmark.records.gallery import GalleryEntry, SqliteGalleryRecords
from loopmark.records.sqlite import SqliteDatabase
from loopmark.service.gallery import (
    InMemoryGallery,
)

CHECK_S = 5.0
REFRESH_S = 60.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingRecords(SqliteGalleryRecords):
    """The real SQLite adapter, counting reads, and able to fail like an unreachable backend."""

    def __init__(self, db: SqliteDatabase) -> None:
        super().__init__(db)
        self.entry_reads = 0
        self.version_reads = 0
        self.down = False

    def entries(self) -> list[GalleryEntry]:
        if self.down:
            raise RecordsUnavailable("the database is down")
        self.entry_reads += 1
        return super().entries()

    def version(self) -> int:
        if self.down:
            raise RecordsUnavailable("the database is down")
        self.version_reads += 1
        return super().version()


def done(key: str, caption: str = "Hello") -> RenderRecord:
    return RenderRecord(
        key=key,
        status=RenderStatus.DONE,
        template_id="small",
        caption=caption,
        owner=None,
        lease_until=0.0,
        progress=1.0,
        attempts=1,
        created_at=1.0,
        updated_at=2.0,
        media={"width": 320, "height": 180},
        error=None,
    )


def key(n: int) -> str:
    return f"k{n:023d}"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "loopmark.db"
    SqliteDatabase(path).migrate()
    return path


@pytest.fixture
def records(db_path: Path) -> Iterator[CountingRecords]:
    adapter = CountingRecords(SqliteDatabase(db_path))
    yield adapter
    adapter.close()


@pytest.fixture
def other(db_path: Path) -> Iterator[SqliteGalleryRecords]:
    """The same records as another process sees them (its own connection)."""
    adapter = SqliteGalleryRecords(SqliteDatabase(db_path))
    yield adapter
    adapter.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def gallery(records: CountingRecords, clock: Clock) -> InMemoryGallery:
    return InMemoryGallery(records, refresh_s=REFRESH_S, version_check_s=CHECK_S, clock=clock)


def keys_of(gallery: InMemoryGallery) -> list[str]:
    return [entry.key for entry in gallery.entries()]


def test_loads_on_first_use_then_serves_from_memory(
    gallery: InMemoryGallery, records: CountingRecords, other: SqliteGalleryRecords
) -> None:
    other.add(done(key(1)))
    assert records.entry_reads == 0  # nothing read before it is asked for
    assert keys_of(gallery) == [key(1)]
    for _ in range(5):
        assert keys_of(gallery) == [key(1)]
    assert records.entry_reads == 1
    assert records.version_reads == 1
    assert gallery.version == other.version()


def test_another_process_change_is_seen_after_the_version_check_interval(
    gallery: InMemoryGallery, records: CountingRecords, other: SqliteGalleryRecords, clock: Clock
) -> None:
    assert keys_of(gallery) == []
    other.add(done(key(1)))
    clock.now += CHECK_S - 0.5
    assert keys_of(gallery) == []  # within the bound: the copy held
    assert records.version_reads == 1
    clock.now += 0.5
    assert keys_of(gallery) == [key(1)]
    assert records.entry_reads == 2


def test_an_unchanged_version_costs_one_version_read_and_no_reload(
    gallery: InMemoryGallery, records: CountingRecords, clock: Clock
) -> None:
    keys_of(gallery)
    clock.now += CHECK_S
    keys_of(gallery)
    assert (records.version_reads, records.entry_reads) == (2, 1)


def test_reloads_after_the_refresh_period_whatever_the_version(
    records: CountingRecords, clock: Clock
) -> None:
    gallery = InMemoryGallery(records, refresh_s=REFRESH_S, version_check_s=1e9, clock=clock)
    keys_of(gallery)
    clock.now += REFRESH_S - 1
    keys_of(gallery)
    assert records.entry_reads == 1
    clock.now += 1
    keys_of(gallery)
    assert records.entry_reads == 2


def test_writes_through_the_gallery_are_served_at_once(
    gallery: InMemoryGallery, other: SqliteGalleryRecords
) -> None:
    assert keys_of(gallery) == []
    entry = gallery.add(done(key(1), "one"))
    assert entry.caption == "one"
    gallery.add(done(key(2)))
    gallery.add(done(key(3)))
    assert keys_of(gallery) == [key(1), key(2), key(3)]  # no clock movement needed
    gallery.reorder([key(3), key(1), key(2)])
    assert keys_of(gallery) == [key(3), key(1), key(2)]
    assert gallery.remove(key(1)) is True
    assert gallery.remove(key(1)) is False
    assert keys_of(gallery) == [key(3), key(2)]
    assert [e.key for e in other.entries()] == [key(3), key(2)]  # the records were written
    assert gallery.version == other.version()


def test_page_slices_the_copy(gallery: InMemoryGallery) -> None:
    for n in range(5):
        gallery.add(done(key(n)))
    page, more = gallery.page(0, 2)
    assert [e.key for e in page] == [key(0), key(1)] and more
    page, more = gallery.page(4, 2)
    assert [e.key for e in page] == [key(4)] and not more
    assert gallery.page(9, 2) == ((), False)


def test_a_failing_refresh_keeps_serving_the_copy_held(
    gallery: InMemoryGallery, records: CountingRecords, other: SqliteGalleryRecords, clock: Clock
) -> None:
    other.add(done(key(1)))
    assert keys_of(gallery) == [key(1)]
    records.down = True
    clock.now += REFRESH_S
    assert keys_of(gallery) == [key(1)]
    records.down = False
    other.add(done(key(2)))
    clock.now += CHECK_S
    assert keys_of(gallery) == [key(1), key(2)]


def test_a_failing_first_load_raises(gallery: InMemoryGallery, records: CountingRecords) -> None:
    records.down = True
    with pytest.raises(RecordsUnavailable):
        gallery.entries()
    assert gallery.load() is False
    records.down = False
    assert gallery.load() is True
    assert gallery.entries() == ()


def test_readers_and_writers_in_threads_always_see_whole_lists(
    gallery: InMemoryGallery, clock: Clock
) -> None:
    gallery.entries()
    seen: list[tuple[GalleryEntry, ...]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                seen.append(gallery.entries())
                clock.now += 0.1
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(4)]
    for thread in readers:
        thread.start()
    try:
        for n in range(20):
            gallery.add(done(key(n)))
    finally:
        stop.set()
        for thread in readers:
            thread.join()
    assert errors == []
    assert keys_of(gallery) == [key(n) for n in range(20)]
    for entries in seen:  # every list seen is a prefix of the final order, positions in step
        assert [e.position for e in entries] == list(range(len(entries)))
        assert [e.key for e in entries] == [key(n) for n in range(len(entries))]
