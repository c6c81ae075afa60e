"""The GalleryRecords contract, run against every adapter (a SQLite file, DynamoDB on moto)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from loopmark.errors import BadInput, RecordsUnavailable
from loopmark.records import (
    GalleryEntry,
    GalleryRecords,
    RenderRecord,
    RenderStatus,
    open_gallery_records,
    open_render_records,
)
from loopmark.records import gallery as gallery_module
from loopmark.records.gallery import MAX_GALLERY_ENTRIES
from loopmark.records.sqlite import MIGRATIONS
from tests.records.conftest import (
    START,
    FakeClock,
    assert_opening_connects_to_nothing,
    race,
    set_up,
)


def render(
    key: str, *, status: RenderStatus = RenderStatus.DONE, caption: str = "Hello", **media: Any
) -> RenderRecord:
    return RenderRecord(
        key=key,
        status=status,
        template_id="bunny",
        caption=caption,
        owner=None,
        lease_until=0.0,
        progress=1.0,
        attempts=1,
        created_at=START - 100,
        updated_at=START - 50,
        media={"gif": f"{key}.gif", "width": 480, "height": 270, **media},
        error=None,
    )


def keys(gallery: GalleryRecords) -> list[str]:
    entries = gallery.entries()
    assert [e.position for e in entries] == list(range(len(entries)))  # always contiguous
    return [e.key for e in entries]


@pytest.fixture
def gallery(records_url: str, clock: FakeClock) -> Iterator[GalleryRecords]:
    yield from set_up(open_gallery_records(records_url, clock=clock))


def test_an_empty_gallery_has_no_entries_and_version_zero(gallery: GalleryRecords) -> None:
    assert gallery.entries() == []
    assert gallery.version() == 0


def test_add_appends_last_and_copies_what_the_gallery_shows(
    gallery: GalleryRecords, clock: FakeClock
) -> None:
    first = gallery.add(render("k1", caption="Hello World", width=320, height=180))
    clock.advance(10)
    gallery.add(render("k2"))
    clock.advance(10)
    gallery.add(render("k3"))
    assert first == GalleryEntry(
        key="k1",
        template_id="bunny",
        caption="Hello World",
        position=0,
        added_at=START,
        width=320,
        height=180,
    )
    entries = gallery.entries()
    assert entries[0] == first
    assert [(e.key, e.position, e.added_at) for e in entries] == [
        ("k1", 0, START),
        ("k2", 1, START + 10),
        ("k3", 2, START + 20),
    ]
    assert gallery.version() == 3


def test_adding_twice_changes_nothing(gallery: GalleryRecords, clock: FakeClock) -> None:
    gallery.add(render("k1"))
    entry = gallery.add(render("k2"))
    version = gallery.version()
    clock.advance(60)
    assert gallery.add(render("k2", caption="other")) == entry
    assert keys(gallery) == ["k1", "k2"]
    assert gallery.entries()[1] == entry
    assert gallery.version() == version


@pytest.mark.parametrize(
    "status", [RenderStatus.RENDERING, RenderStatus.FAILED, RenderStatus.BLOCKED]
)
def test_only_a_done_render_can_be_added(gallery: GalleryRecords, status: RenderStatus) -> None:
    with pytest.raises(BadInput, match="done"):
        gallery.add(render("k1", status=status))
    assert gallery.entries() == [] and gallery.version() == 0


@pytest.mark.parametrize(
    "media", [{"width": None}, {"height": "270"}, {"width": 0}, {"width": True}]
)
def test_a_render_without_a_media_size_is_refused(
    gallery: GalleryRecords, media: dict[str, Any]
) -> None:
    with pytest.raises(BadInput, match="size"):
        gallery.add(render("k1", **media))
    assert gallery.entries() == [] and gallery.version() == 0


def test_remove_moves_later_entries_up(gallery: GalleryRecords) -> None:
    for key in ("k1", "k2", "k3", "k4"):
        gallery.add(render(key))
    assert gallery.remove("k2") is True
    assert keys(gallery) == ["k1", "k3", "k4"]
    assert gallery.version() == 5
    assert gallery.remove("k2") is False
    assert gallery.remove("never") is False
    assert gallery.version() == 5  # nothing changed
    gallery.add(render("k2"))  # back, at the end
    assert keys(gallery) == ["k1", "k3", "k4", "k2"]
    assert gallery.remove("k2") and gallery.remove("k1") and gallery.remove("k4")
    assert gallery.remove("k3")
    assert gallery.entries() == [] and gallery.version() == 10


def test_reorder_sets_the_whole_order(gallery: GalleryRecords) -> None:
    for key in ("k1", "k2", "k3"):
        gallery.add(render(key, caption=key.upper()))
    gallery.reorder(["k3", "k1", "k2"])
    entries = gallery.entries()
    assert [(e.key, e.position, e.caption) for e in entries] == [
        ("k3", 0, "K3"),
        ("k1", 1, "K1"),
        ("k2", 2, "K2"),
    ]
    assert gallery.version() == 4
    gallery.reorder(["k3", "k1", "k2"])  # the same order again: no change
    assert gallery.version() == 4
    gallery.add(render("k4"))
    assert keys(gallery) == ["k3", "k1", "k2", "k4"]


@pytest.mark.parametrize(
    "order",
    [
        ["k1", "k2"],  # one missing
        ["k1", "k2", "k3", "k4"],  # one unknown
        ["k1", "k2", "k2"],  # twice
        ["k1", "k2", "k3", "k3"],
        [],
        "k1k2k3",
        ("k1", "k2", "k3"),
        ["k1", "k2", 3],
    ],
)
def test_reorder_must_name_exactly_the_current_entries(gallery: GalleryRecords, order: Any) -> None:
    for key in ("k1", "k2", "k3"):
        gallery.add(render(key))
    with pytest.raises(BadInput):
        gallery.reorder(order)
    assert keys(gallery) == ["k1", "k2", "k3"]
    assert gallery.version() == 3


def test_reorder_of_an_empty_gallery(gallery: GalleryRecords) -> None:
    gallery.reorder([])
    assert gallery.version() == 0
    with pytest.raises(BadInput):
        gallery.reorder(["k1"])


def test_reads_never_bump_the_version(gallery: GalleryRecords) -> None:
    gallery.add(render("k1"))
    for _ in range(3):
        gallery.entries()
        gallery.version()
    assert gallery.version() == 1


def test_the_gallery_is_bounded(gallery: GalleryRecords, monkeypatch: pytest.MonkeyPatch) -> None:
    # The real bound is 500; moto copies its whole store for every transaction, so 500 adds
    # would take minutes there. The rule is the same at any size.
    assert MAX_GALLERY_ENTRIES == 500
    monkeypatch.setattr(gallery_module, "MAX_GALLERY_ENTRIES", 5)
    for i in range(5):
        gallery.add(render(f"k{i}"))
    with pytest.raises(BadInput, match="full"):
        gallery.add(render("one-more"))
    gallery.add(render("k3"))  # already there: still fine
    assert keys(gallery) == ["k0", "k1", "k2", "k3", "k4"]
    assert gallery.version() == 5
    gallery.reorder(["k4", "k3", "k2", "k1", "k0"])
    assert gallery.remove("k0")
    gallery.add(render("one-more"))
    assert keys(gallery) == ["k4", "k3", "k2", "k1", "one-more"]


def test_setup_is_idempotent(gallery: GalleryRecords) -> None:
    gallery.add(render("k1"))
    gallery.setup()
    assert keys(gallery) == ["k1"] and gallery.version() == 1


def test_opening_connects_to_nothing(tmp_path: Path) -> None:
    assert_opening_connects_to_nothing(open_gallery_records, tmp_path, "postgres://db")


@pytest.fixture
def racing_gallery(racing_records_url: str, clock: FakeClock) -> Iterator[GalleryRecords]:
    yield from set_up(open_gallery_records(racing_records_url, clock=clock))


def test_ten_admins_at_once_leave_a_consistent_order(racing_gallery: GalleryRecords) -> None:
    gallery = racing_gallery
    race(10, lambda i: gallery.add(render(f"first{i}")))
    assert sorted(keys(gallery)) == sorted(f"first{i}" for i in range(10))
    assert gallery.version() == 10

    reorders = 0
    lock = threading.Lock()

    def mixed(i: int) -> None:
        nonlocal reorders
        if i % 3 == 0:
            assert gallery.remove(f"first{i}") is True
        elif i % 3 == 1:
            gallery.add(render(f"second{i}"))
        else:
            # The set may change under a reorder (BadInput): read again and retry, as a page would.
            for _ in range(50):
                current = keys(gallery)
                try:
                    gallery.reorder(current[::-1])
                except BadInput:
                    continue
                with lock:
                    reorders += 1
                return
            raise AssertionError("a reorder never went through")

    race(10, mixed)
    entries = gallery.entries()
    final = [e.key for e in entries]
    expected = {f"first{i}" for i in range(10) if i % 3} | {f"second{i}" for i in (1, 4, 7)}
    assert set(final) == expected and len(final) == len(expected)
    assert [e.position for e in entries] == list(range(len(entries)))
    assert all((e.width, e.height, e.template_id) == (480, 270, "bunny") for e in entries)
    # 4 removes and 3 adds changed it for sure; each reorder did unless another made it moot.
    assert 10 + 7 < gallery.version() <= 10 + 7 + reorders


def test_a_database_made_before_the_gallery_gets_its_tables_on_setup(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path)) as conn:
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO render_records VALUES"
            " ('k1', 'done', 'bunny', 'Hi', 'hi', NULL, 0, 1, 1, 1, 2, '{}', NULL)"
        )
        conn.commit()
    gallery = open_gallery_records(f"sqlite:///{path}")
    with pytest.raises(RecordsUnavailable, match="loopmark setup"):
        gallery.entries()
    gallery.setup()
    assert gallery.entries() == [] and gallery.version() == 0
    renders = open_render_records(f"sqlite:///{path}")
    assert renders.get("k1").caption == "Hi"  # type: ignore[union-attr]
    renders.close()
    gallery.close()
