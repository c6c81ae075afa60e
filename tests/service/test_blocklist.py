"""The blocklist kept beside the media: one marker per take-down, re-applied to records that lost
it, and the in-memory set the site checks (local files, and S3 on moto's server)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopmark.composition import build_render_service, reapply_blocklist, setup_backends
from loopmark.config import Settings
from loopmark.errors import StorageUnavailable
from loopmark.service.blocklist import Blocklist, marked_keys, marker_key, reapply
from loopmark.service.render_service import RenderBlocked, RenderService, media_keys
from loopmark.storage import open_blob_store
from loopmark.storage.base import StoredBlob
from tests.service.conftest import make_settings
from tests.service.test_render_service import done

KEY = "k" * 24


def test_a_take_down_writes_one_marker_per_key(service: RenderService) -> None:
    outcome = done(service, "Mark me")
    service.take_down(outcome.key, reason="off-brand")
    service.take_down(KEY, reason="pre-emptive")
    assert marked_keys(service.blobs) == {outcome.key, KEY}
    marker = json.loads(service.blobs.get(marker_key(outcome.key)))
    assert marker["key"] == outcome.key and marker["reason"] == "off-brand"
    assert marker["blocked_at"] > 0


def test_reapply_blocks_again_what_the_records_lost(
    service: RenderService, settings: Settings, tmp_path: Path
) -> None:
    outcome = done(service, "Lost block")
    service.take_down(outcome.key, reason="off-brand")
    # The records forget everything (a database from before the take-down, or a new one).
    service.records.close()
    Path(settings.records_url.removeprefix("sqlite:///")).unlink()
    for suffix in ("-wal", "-shm"):
        Path(settings.records_url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    setup_backends(settings)  # the start: schema, then the blocklist applied again
    record = service.records.get(outcome.key)
    assert record is not None and record.status == "blocked"
    assert record.error == "off-brand"
    with pytest.raises(RenderBlocked):
        service.request("small", "Lost block")
    assert reapply_blocklist(settings) == []  # idempotent


def test_reapply_deletes_media_that_came_back(service: RenderService, settings: Settings) -> None:
    outcome = done(service, "Came back")
    saved = {k: service.blobs.get(k) for k in media_keys(outcome.key).values()}
    service.take_down(outcome.key, reason="off-brand")
    database = settings.records_url.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(database)) as conn, conn:
        conn.execute("DELETE FROM render_records")
    for key, data in saved.items():
        service.blobs.put(key, data, content_type="application/octet-stream")
    assert reapply(service.blobs, service) == [outcome.key]
    assert not any(service.blobs.exists(k) for k in saved)


def test_blocklist_set_lists_once_and_survives_storage_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blobs = open_blob_store(f"file://{tmp_path / 'media'}")
    blobs.setup()
    now = [0.0]
    blocklist = Blocklist(blobs, refresh_s=300, clock=lambda: now[0])
    assert KEY not in blocklist
    blobs.put(marker_key(KEY), b"{}", content_type="application/json")
    assert KEY not in blocklist  # not listed again before refresh_s
    now[0] = 301
    assert KEY in blocklist
    listings = []

    def down(prefix: str) -> Iterator[StoredBlob]:
        listings.append(prefix)
        raise StorageUnavailable("storage down")

    monkeypatch.setattr(blobs, "list", down)
    now[0] = 700
    assert KEY in blocklist  # the set it had still answers
    assert KEY in blocklist  # and the listing is not tried at every check
    assert listings == ["blocked/"]
    blocklist.add("m" * 24)
    assert "m" * 24 in blocklist


def test_markers_live_in_s3_beside_the_media(
    tmp_path: Path, workdir: Path, small: object, aws: str
) -> None:
    settings = make_settings(tmp_path, workdir, LOOPMARK_STORAGE="s3://loopmark-media/renders")
    setup_backends(settings)
    service = build_render_service(settings, with_dispatcher=False)
    try:
        service.take_down(KEY, reason="on S3")
        assert marked_keys(service.blobs) == {KEY}
        assert KEY in Blocklist(service.blobs)
    finally:
        service.close()


def test_an_unwritable_marker_fails_the_take_down_loudly(service: RenderService) -> None:
    def refuse(key: str, data: bytes, *, content_type: str) -> None:
        raise StorageUnavailable("storage down")

    service.blobs.put = refuse  # type: ignore[method-assign]
    with pytest.raises(StorageUnavailable):
        service.take_down(KEY, reason="storage down")
    record = service.records.get(KEY)
    assert record is not None and record.status == "blocked"  # the records' block holds
