"""Retention: render hits written in batches once a day per key, and `collect_garbage` over real
renders, local media and SQLite (gallery entries, recent hits and block markers kept)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from loopmark.config import Settings
from loopmark.records.gallery import open_gallery_records
from loopmark.records.retention import open_retention_records
from loopmark.service.blocklist import marked_keys
from loopmark.service.render_service import RenderService, media_keys
from loopmark.service.reports import REPORTS_PREFIX, Reports
from loopmark.service.retention import (
    SECONDS_PER_DAY,
    TEMP_MAX_AGE_SECONDS,
    HitLog,
    collect_garbage,
)
from tests.service.test_render_service import done

DAYS = 90
ORPHAN = "z" * 24


class CountingHits:
    def __init__(self) -> None:
        self.writes: list[tuple[list[str], float]] = []

    def touch(self, keys: Sequence[str], at: float) -> None:
        self.writes.append((list(keys), at))

    def close(self) -> None:
        pass


def test_hits_are_written_once_a_day_per_key_off_the_request_path() -> None:
    records = CountingHits()
    now = [10 * SECONDS_PER_DAY + 5.0]
    hits = HitLog(records, flush_s=3600, clock=lambda: now[0])  # type: ignore[arg-type]
    for _ in range(100):
        hits.seen("a" * 24)
    hits.seen("b" * 24)
    assert records.writes == []  # nothing written on the request path
    assert hits.flush() == 2
    hits.seen("a" * 24)
    assert hits.flush() == 0  # already written today
    now[0] += SECONDS_PER_DAY
    hits.seen("a" * 24)
    hits.close()  # writes what is left
    assert [keys for keys, _ in records.writes] == [["a" * 24, "b" * 24], ["a" * 24]]


def test_gc_deletes_what_nobody_asked_for_and_keeps_the_rest(
    service: RenderService, settings: Settings, tmp_path: Path
) -> None:
    gallery_render = done(service, "Keep: gallery")
    asked = done(service, "Keep: asked lately")
    dropped = done(service, "Drop me")
    service.take_down("k" * 24, reason="blocked")
    gallery = open_gallery_records(settings.records_url)
    retention = open_retention_records(settings.records_url)
    record = service.record(gallery_render.key)
    assert record is not None
    gallery.add(record)
    now = time.time() + (DAYS + 1) * SECONDS_PER_DAY
    retention.touch([asked.key], now - 5 * SECONDS_PER_DAY)
    # Media without a record, and temporary leftovers: old ones go, young ones stay.
    old = time.time() - (DAYS + 1) * SECONDS_PER_DAY
    for storage_key in media_keys(ORPHAN).values():
        service.blobs.put(storage_key, b"orphan", content_type="image/gif")
        path = service.local_media_file(storage_key)
        assert path is not None
        os.utime(path, (old, old))
    data_dir = tmp_path / "data"
    (data_dir / "prepared" / "small" / ".building-old").mkdir(parents=True)
    (data_dir / "prepared" / "small" / ".building-young").mkdir()
    (data_dir / "media" / ".tmp-abc").parent.mkdir(parents=True)
    (data_dir / "media" / ".tmp-abc").write_bytes(b"partial")
    stale, young = now - TEMP_MAX_AGE_SECONDS - 60, now - 60
    for name in ("prepared/small/.building-old", "media/.tmp-abc"):
        os.utime(data_dir / name, (stale, stale))
    os.utime(data_dir / "prepared/small/.building-young", (young, young))

    def run(dry_run: bool) -> str:
        report = collect_garbage(
            render=service,
            retention=retention,
            gallery_keys={entry.key for entry in gallery.entries()},
            forget_admin_rows=lambda dry: 0,
            data_dir=data_dir,
            days=DAYS,
            dry_run=dry_run,
            now=now,
        )
        # Every medium of the dropped render and of the orphan (gif, mp4, poster, card).
        assert (report.renders, report.orphans, report.files) == (1, 1, 2 * len(media_keys(ORPHAN)))
        assert (report.kept_gallery, report.temporary) == (1, 2)
        return report.line(DAYS)

    assert run(dry_run=True).startswith("gc (90 days): would delete 1 renders")
    assert service.record(dropped.key) is not None  # a dry run deletes nothing
    assert run(dry_run=False).startswith("gc (90 days): deleted 1 renders")

    assert service.record(dropped.key) is None
    assert not any(service.blobs.exists(k) for k in media_keys(dropped.key).values())
    assert not any(service.blobs.exists(k) for k in media_keys(ORPHAN).values())
    for kept in (gallery_render.key, asked.key):
        assert all(service.blobs.exists(k) for k in media_keys(kept).values())
    assert marked_keys(service.blobs) == {"k" * 24}
    assert not (data_dir / "prepared" / "small" / ".building-old").exists()
    assert not (data_dir / "media" / ".tmp-abc").exists()
    assert (data_dir / "prepared" / "small" / ".building-young").exists()
    # Asked for again, a dropped render is simply made again.
    again = done(service, "Drop me")
    assert again.key == dropped.key
    assert all(service.blobs.exists(k) for k in media_keys(dropped.key).values())
    gallery.close()
    retention.close()


def test_gc_deletes_reports_of_renders_dealt_with_and_old_reports(
    service: RenderService, settings: Settings, tmp_path: Path
) -> None:
    """Real renders, local storage and SQLite: a report of a live render stays until it is older
    than the cutoff; reports of a taken-down render, or of one retention forgot, go at once."""
    live = done(service, "Still up")
    forgotten = done(service, "Forgotten")
    taken = done(service, "Taken down")
    now = time.time()
    made = {"at": now - (DAYS + 1) * SECONDS_PER_DAY}
    reports = Reports(service.blobs, clock=lambda: made["at"])
    reports.submit(live.key, "an old report nobody looked at")
    made["at"] = now - 60
    for outcome in (live, forgotten, taken):
        reports.submit(outcome.key, "fresh")
    service.take_down(taken.key, reason="reported")
    retention = open_retention_records(settings.records_url)
    record = service.record(forgotten.key)
    assert record is not None and retention.forget_render(
        forgotten.key, updated_at=record.updated_at
    )
    service.records.forget(forgotten.key)  # as gc does after forgetting one

    def run(dry_run: bool) -> int:
        report = collect_garbage(
            render=service,
            retention=retention,
            gallery_keys=set(),
            forget_admin_rows=lambda dry: 0,
            data_dir=tmp_path / "data",
            days=DAYS,
            dry_run=dry_run,
            now=now,
            reports=reports,
        )
        assert "3 reports" in report.line(DAYS)
        return report.reports

    assert run(dry_run=True) == 3
    assert len(list(service.blobs.list(REPORTS_PREFIX))) == 4
    assert run(dry_run=False) == 3
    assert [(r.key, r.reasons) for r in reports.pending()] == [(live.key, ["fresh"])]
    retention.close()
