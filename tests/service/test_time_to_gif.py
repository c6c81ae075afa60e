"""Time to GIF: the render service stores the GIF and records it before the MP4 is encoded;
the poster, MP4 and share card follow, each reported as it lands."""

from __future__ import annotations

from typing import Any

from loopmark.dispatch.base import RenderJob
from loopmark.renderer.caption_policy import normalize_caption
from loopmark.renderer.render import EXTRA_KINDS, render_key
from loopmark.service.render_service import (
    MEDIA_FILES,
    RenderOutcome,
    RenderService,
    media_keys,
)
from loopmark.storage.base import BlobStore


class WatchedBlobs:
    """The service's real blob store, noting what the records and the service said at the
    moment each rendition was stored."""

    def __init__(self, inner: BlobStore, service: RenderService) -> None:
        self.inner = inner
        self.service = service
        self.seen: list[tuple[str, list[str], RenderOutcome | None]] = []

    def put(self, key: str, data: bytes, *, content_type: str) -> None:
        kind = next(k for k, v in media_keys(key.split("/")[2]).items() if v == key)
        record = self.service.records.get(key.split("/")[2])
        assert record is not None  # claimed before any media is stored
        stored: list[str] = sorted(
            k for k in ("gif", "poster", "thumbnail", "mp4", "card") if k in (record.media or {})
        )
        self.seen.append((kind, stored, self.service.status(key.split("/")[2])))
        self.inner.put(key, data, content_type=content_type)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_the_gif_is_stored_and_recorded_before_the_mp4(service: RenderService) -> None:
    caption = normalize_caption("GIF first")
    key = render_key(service.catalog.get("small"), caption)
    watched = WatchedBlobs(service.blobs, service)
    service.blobs = watched
    progress: list[float] = []
    service.execute(RenderJob(key, "small", caption), progress.append)

    kinds = [kind for kind, _, _ in watched.seen]
    assert kinds == ["gif", "poster", "thumbnail", "mp4", "card"]
    # When each file was written, the record already listed every earlier one.
    assert [stored for _, stored, _ in watched.seen] == [
        [],
        ["gif"],
        ["gif", "poster"],
        ["gif", "poster", "thumbnail"],
        ["gif", "mp4", "poster", "thumbnail"],
    ]
    # While the MP4 was being stored, a visitor was told the GIF is there (with its URL only).
    _, _, at_mp4 = watched.seen[3]
    assert at_mp4 is not None and at_mp4.status == "rendering"
    assert at_mp4.renditions == {
        "gif": True,
        "mp4": False,
        "poster": True,
        "card": False,
        "thumbnail": True,
    }
    assert set(at_mp4.urls) == {"gif", "poster", "thumbnail"}
    assert at_mp4.media["width"] == 160 and at_mp4.media["bytes"] > 0
    # Progress rose to the end; the MP4 was made after the GIF's frames.
    assert progress == sorted(progress) and progress[-1] == 1.0

    finished = service.status(key)
    assert finished is not None and finished.status == "done"
    assert finished.renditions == {
        "gif": True,
        "mp4": True,
        "poster": True,
        "card": True,
        "thumbnail": True,
    }
    record = service.records.get(key)
    assert record is not None and record.media is not None
    assert set(record.media) >= {"gif", "mp4", "poster", "card", "bytes", "mp4_bytes"}
    assert record.media["bytes"] == len(watched.inner.get(media_keys(key)["gif"]))
    assert record.media["mp4_bytes"] == len(watched.inner.get(media_keys(key)["mp4"]))


def test_a_take_down_while_the_mp4_is_made_deletes_what_lands_after(
    service: RenderService,
) -> None:
    caption = normalize_caption("Taken down half way")
    key = render_key(service.catalog.get("small"), caption)

    class TakeDownAtMp4(WatchedBlobs):
        def put(self, storage_key: str, data: bytes, *, content_type: str) -> None:
            if storage_key == media_keys(key)["mp4"]:
                self.service.take_down(key, reason="test")
            self.inner.put(storage_key, data, content_type=content_type)

    watched = TakeDownAtMp4(service.blobs, service)
    service.blobs = watched
    service.execute(RenderJob(key, "small", caption), lambda _f: None)

    record = service.records.get(key)
    assert record is not None and record.status == "blocked"
    for storage_key in media_keys(key).values():
        assert not watched.inner.exists(storage_key), storage_key


def test_the_renditions_the_renderer_makes_are_the_files_the_service_stores() -> None:
    """Two lists of one thing, kept apart on purpose (the renderer's order after the GIF, the
    service's file names): a rendition added to one alone would never be stored or never made."""
    assert set(MEDIA_FILES) == {"gif", *EXTRA_KINDS}
    assert len(EXTRA_KINDS) == len(set(EXTRA_KINDS))
