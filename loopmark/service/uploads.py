"""Visitor uploads: accept a declared file, store it under ``incoming/``, verify it with the
hardened probe, and turn (upload, start, duration, caption) into a render of a one-off clip
template through the same render service, dispatcher and cache as template renders.

Steps, each idempotent: ``check_declared`` (size and type, before any byte is stored) →
``store`` (the file, under a server-chosen key) → ``verify`` (size, the hardened probe, the
content hash; its result kept as ``incoming/<id>/upload.json``) → ``request_render`` (the trim
checked against the probed clip, the clip described in storage, the render requested). The
clip's preparation and render happen wherever the dispatcher runs jobs (see service.clips).

Upload ids are random (128 bits) and server-chosen; who may use one is decided at the web edge
(a signed id bound to its visitor). Nothing here serves an uploaded file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from loopmark.errors import (
    N_,
    BackendUnavailable,
    BadInput,
    LoopmarkError,
    QueueFull,
    StorageUnavailable,
    VideoRejected,
)
from loopmark.renderer.clip import ClipTemplate, clip_id, is_clip_id
from loopmark.renderer.probe import probe_video
from loopmark.renderer.render import normalised_render_key
from loopmark.renderer.templates import SOURCE_USED_SECONDS
from loopmark.service.clips import (
    CLIP_SPECS_PREFIX,
    INCOMING_PREFIX,
    ClipCatalog,
    ClipSpec,
    UploadGone,
)
from loopmark.service.render_service import RenderOutcome, RenderService
from loopmark.storage.base import BlobStore

log = logging.getLogger(__name__)

UPLOAD_ID_RE = re.compile(r"[0-9a-f]{32}")
# Types a phone or a browser sends for a video (and animated GIFs). Anything else is a 415.
ACCEPTED_TYPES = frozenset(
    {
        "video/mp4",
        "video/quicktime",
        "video/webm",
        "video/x-matroska",
        "video/3gpp",
        "video/3gpp2",
        "video/x-m4v",
        "image/gif",
    }
)
MAX_FILENAME_CHARS = 255
MIN_CLIP_SECONDS = 0.2
# A trim may end this far past the probed duration (container rounding); it is cut to fit.
END_TOLERANCE_SECONDS = 0.1
# How long an upload id and its stored file live (the incoming prefix's expiry, and gc's).
UPLOAD_TTL_SECONDS = 3600
# How long the upload form's URL may be used after POST /api/uploads.
UPLOAD_URL_SECONDS = 600
# A clip's prepared frames are kept this long after their last use (gc), then deleted.
CLIP_PREPARED_TTL_SECONDS = 24 * 3600
HASH_CHUNK_BYTES = 1024 * 1024
# The bytes of unprocessed uploads are counted from storage at most this often (a listing of
# incoming/), and again at most this often when an upload would pass the cap (so a cap freed by
# processing is seen within a second, and a flood near the cap lists once a second at most).
INCOMING_LIST_SECONDS = 15.0
INCOMING_RELIST_SECONDS = 1.0
# What a refused upload is told to wait: uploads are processed within a minute, or expire.
INCOMING_RETRY_AFTER_SECONDS = 60
INCOMING_FULL_MESSAGE = N_(
    "Too many clips are waiting to be made right now; please try again in a minute."
)
# Uploads one visitor may have announced and not yet sent at once: announcing costs nothing,
# and without this one visitor could hold the whole incoming cap with announcements alone.
MAX_PENDING_UPLOADS_PER_VISITOR = 3
PENDING_RETRY_AFTER_SECONDS = 60
PENDING_MESSAGE = N_(
    "Your other clips are still on their way: send them (or wait a minute) before another."
)
_SOURCE_KEY_RE = re.compile(rf"{re.escape(INCOMING_PREFIX)}[0-9a-f]{{32}}/source")
SOURCE_CONTENT_TYPE = "application/octet-stream"  # stored opaque: never served as it is


class UploadTooLarge(BadInput):
    code = "video_too_large"
    http_status = 413


class UploadTypeRefused(BadInput):
    code = "video_unsupported"
    http_status = 415


class UploadMissing(BadInput):
    """No file under this upload id: never uploaded, expired, or refused earlier."""

    code = "unknown_upload"
    http_status = 404


class ClipOutOfRange(BadInput):
    code = "clip_out_of_range"


class IncomingFull(BackendUnavailable):
    """Unprocessed uploads hold LOOPMARK_UPLOAD_INCOMING_MAX_BYTES already: 503 with
    Retry-After, before any byte of this one is sent."""

    code = "uploads_full"


class UploadsPending(QueueFull):
    """This visitor has MAX_PENDING_UPLOADS_PER_VISITOR uploads announced and not yet stored;
    429 with Retry-After."""

    code = "uploads_pending"


class UploadsBusy(QueueFull):
    """As many upload renders are queued or running as the cap allows (templates keep the
    rest of the workers); 429 with Retry-After."""

    code = "uploads_busy"


@dataclass(frozen=True)
class UploadInfo:
    """What verification learnt of an upload (kept as ``incoming/<id>/upload.json``)."""

    content_sha256: str
    size: int  # bytes
    container: str
    width: int
    height: int
    duration_s: float
    fps: float

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> UploadInfo:
        try:
            raw = json.loads(data)
            return cls(
                content_sha256=str(raw["content_sha256"]),
                size=int(raw["size"]),
                container=str(raw["container"]),
                width=int(raw["width"]),
                height=int(raw["height"]),
                duration_s=float(raw["duration_s"]),
                fps=float(raw["fps"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise StorageUnavailable(f"an upload's description is not valid: {exc}") from exc


def source_key(upload_id: str) -> str:
    return f"{INCOMING_PREFIX}{upload_id}/source"


def info_key(upload_id: str) -> str:
    return f"{INCOMING_PREFIX}{upload_id}/upload.json"


def check_upload_id(upload_id: str) -> str:
    if UPLOAD_ID_RE.fullmatch(upload_id) is None:
        raise UploadMissing(N_("There is no upload with this id."))
    return upload_id


def new_upload_id() -> str:
    return secrets.token_hex(16)


class UploadService:
    def __init__(
        self,
        *,
        blobs: BlobStore,
        clips: ClipCatalog,
        render: RenderService,
        max_bytes: int,
        max_seconds: float,
        max_jobs: int,
        incoming_max_bytes: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.blobs = blobs
        self.clips = clips
        self.render = render
        self.max_bytes = max_bytes
        self.max_seconds = min(max_seconds, SOURCE_USED_SECONDS)
        self.max_jobs = max_jobs
        self.clock = clock
        self._jobs_lock = threading.Lock()
        self._jobs: dict[str, float] = {}  # render key → when this process admitted it
        self.incoming_max_bytes = incoming_max_bytes
        self._incoming_lock = threading.Lock()
        self._stored_bytes = 0  # unprocessed uploads' bytes in storage, as last listed (+ since)
        self._listed_at: float | None = None
        # Uploads announced here and not stored yet: upload id → (declared bytes, when).
        self._announced: dict[str, tuple[int, float]] = {}
        self._announced_by: dict[str, str] = {}  # upload id → the visitor who announced it

    # -- 1. the declaration --------------------------------------------------------------------

    def check_declared(self, filename: str, content_type: str, size: int) -> None:
        """Refuse, before any byte is stored, a file declared too big (413) or not a video (415)."""
        if len(filename) > MAX_FILENAME_CHARS:
            raise BadInput(
                N_("The file name is longer than %(max)d characters."),
                params={"max": MAX_FILENAME_CHARS},
            )
        if size <= 0:
            raise UploadTypeRefused(N_("That file is empty."))
        if size > self.max_bytes:
            raise UploadTooLarge(
                N_("The file is %(size).1f MB; the limit is %(limit)g MB."),
                params={"size": size / 2**20, "limit": self.max_bytes / 2**20},
            )
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type not in ACCEPTED_TYPES:
            raise UploadTypeRefused(
                N_("That is not a video we take: send an MP4, MOV, WebM, MKV or GIF.")
            )

    def reserve_incoming(
        self,
        upload_id: str,
        size: int,
        *,
        visitor: str | None = None,
        max_pending: int = MAX_PENDING_UPLOADS_PER_VISITOR,
    ) -> None:
        """Count an announced upload of ``size`` bytes against the cap on unprocessed uploads'
        bytes (stored ones, as storage lists them, plus those announced and on their way);
        IncomingFull when it would pass it, UploadsPending when ``visitor`` (who counts: a
        visitor, or an address) has ``max_pending`` announced already. The reservation lasts
        until the file is stored, or the upload URL expires. (Counted per process; storage is
        shared.)"""
        if self.incoming_max_bytes is None:
            return
        with self._incoming_lock:
            now = time.monotonic()
            for announced_id, (_, at) in list(self._announced.items()):
                if now - at > UPLOAD_URL_SECONDS:
                    del self._announced[announced_id]
                    self._announced_by.pop(announced_id, None)
            if visitor is not None:
                pending = sum(1 for owner in self._announced_by.values() if owner == visitor)
                if pending >= max_pending:
                    raise UploadsPending(PENDING_MESSAGE, retry_after_s=PENDING_RETRY_AFTER_SECONDS)
            listed_at = self._listed_at
            if listed_at is None or now - listed_at > INCOMING_LIST_SECONDS:
                self._list_incoming(now)
            elif self._incoming_total() + size > self.incoming_max_bytes:
                if now - listed_at > INCOMING_RELIST_SECONDS:
                    self._list_incoming(now)  # processing may have freed room since
            if self._incoming_total() + size > self.incoming_max_bytes:
                raise IncomingFull(
                    INCOMING_FULL_MESSAGE, retry_after_s=INCOMING_RETRY_AFTER_SECONDS
                )
            self._announced[upload_id] = (size, now)
            if visitor is not None:
                self._announced_by[upload_id] = visitor

    def incoming_bytes(self) -> int:
        """Unprocessed uploads' bytes as counted for the cap (stored and announced)."""
        with self._incoming_lock:
            return self._incoming_total()

    def _incoming_total(self) -> int:
        return self._stored_bytes + sum(size for size, _ in self._announced.values())

    def _list_incoming(self, now: float) -> None:
        # Sources older than an upload's lifetime are abandoned (gc deletes them; on S3 the
        # lifecycle rule may keep them for a day): they wait for nobody and do not count.
        oldest = time.time() - UPLOAD_TTL_SECONDS
        self._stored_bytes = sum(
            blob.size
            for blob in self.blobs.list(INCOMING_PREFIX)
            if _SOURCE_KEY_RE.fullmatch(blob.key) and blob.modified_at >= oldest
        )
        self._listed_at = now

    def _landed(self, upload_id: str, size: int) -> None:
        """An announced upload's file is in storage: counted as stored until the next listing."""
        with self._incoming_lock:
            self._announced_by.pop(upload_id, None)
            if self._announced.pop(upload_id, None) is not None:
                self._stored_bytes += size

    def direct_upload(
        self, upload_id: str, *, size: int, content_type: str
    ) -> tuple[str, dict[str, str]] | None:
        """Where the client posts the file itself when storage takes it directly (an S3
        presigned POST bounded by the declared size and type), else None: the site does."""
        return self.blobs.presigned_post(
            source_key(check_upload_id(upload_id)),
            max_bytes=min(size, self.max_bytes),
            content_type=content_type.split(";", 1)[0].strip().lower(),
            expires_s=UPLOAD_URL_SECONDS,
        )

    def direct_upload_origin(self) -> str | None:
        """The origin browsers post files to when storage takes them directly (an S3 bucket's,
        for the CSP's ``connect-src``); None when the site takes them itself. Signing is local,
        so this reaches no backend; StorageUnavailable when it cannot sign (no credentials)."""
        direct = self.blobs.presigned_post(
            source_key("0" * 32), max_bytes=1, content_type="video/mp4", expires_s=60
        )
        if direct is None:
            return None
        parts = urlsplit(direct[0])
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return None  # a relative URL: the site's own origin
        return f"{parts.scheme}://{parts.netloc}"

    # -- 2. the file ---------------------------------------------------------------------------

    def store(self, upload_id: str, path: Path, *, declared_size: int | None = None) -> UploadInfo:
        """Store the file at ``path`` as the upload's source, then verify it (VideoRejected and
        nothing kept when it fails). The file is no bigger than declared, nor than the limit."""
        check_upload_id(upload_id)
        try:
            return self._store(upload_id, path, declared_size)
        except BaseException:
            self.release_incoming(upload_id)  # refused: nothing of it is stored
            raise

    def _store(self, upload_id: str, path: Path, declared_size: int | None) -> UploadInfo:
        size = os.stat(path).st_size
        limit = self.max_bytes if declared_size is None else min(declared_size, self.max_bytes)
        if size > limit:
            raise UploadTooLarge(
                N_("The file is bigger than declared (%(size)d bytes, not %(limit)d at most)."),
                params={"size": size, "limit": limit},
            )
        if size == 0:
            raise VideoRejected(N_("That file is empty."), code="video_unsupported")
        # Probe before storing: a refused file is never stored at all.
        info = self._probe(path)
        self.blobs.put_file(source_key(upload_id), path, content_type=SOURCE_CONTENT_TYPE)
        self._landed(upload_id, size)
        self.blobs.put(info_key(upload_id), info.to_json(), content_type="application/json")
        return info

    def release_incoming(self, upload_id: str) -> None:
        """An announced upload that will not be stored (refused): no longer counted."""
        with self._incoming_lock:
            self._announced.pop(upload_id, None)
            self._announced_by.pop(upload_id, None)

    def verify(self, upload_id: str) -> UploadInfo:
        """The upload's verified description: kept from an earlier verification, or made now
        from the stored file (uploads straight to S3). UploadMissing when there is no file;
        VideoRejected (and the file deleted) when it fails the probe."""
        check_upload_id(upload_id)
        try:
            return UploadInfo.from_json(self.blobs.get(info_key(upload_id)))
        except FileNotFoundError:
            pass
        try:
            with self._local_copy(source_key(upload_id)) as path:
                info = self._probe(path)
        except FileNotFoundError:
            raise UploadMissing(
                N_("Nothing was uploaded under this id, or the upload has expired.")
            ) from None
        except VideoRejected:
            self.blobs.delete(source_key(upload_id))
            self.release_incoming(upload_id)
            raise
        self._landed(upload_id, info.size)  # posted straight to storage
        self.blobs.put(info_key(upload_id), info.to_json(), content_type="application/json")
        return info

    def _probe(self, path: Path) -> UploadInfo:
        video = probe_video(path, max_bytes=self.max_bytes)
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
        return UploadInfo(
            content_sha256=digest.hexdigest(),
            size=os.stat(path).st_size,
            container=video.container,
            width=video.width,
            height=video.height,
            duration_s=video.duration_s,
            fps=video.fps,
        )

    @contextmanager
    def _local_copy(self, key: str) -> Iterator[Path]:
        local = self.blobs.local_path(key)
        if local is not None:
            yield local
            return
        folder = Path(tempfile.mkdtemp(prefix="loopmark-upload-"))
        try:
            path = folder / "source"
            self.blobs.get_file(key, path)
            yield path
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    # -- 3. the render -------------------------------------------------------------------------

    def clip_for(self, upload_id: str, start_s: float, duration_s: float) -> ClipTemplate:
        """The clip template of this trim of the upload, described in storage for the workers.
        ClipOutOfRange for a trim outside the clip; UploadGone when its file was processed and
        deleted and this trim was not prepared."""
        info = self.verify(upload_id)
        start_s, duration_s = self.check_trim(info, start_s, duration_s)
        template_id = clip_id(info.content_sha256, start_s, duration_s)
        spec = ClipSpec(
            source_key=source_key(upload_id),
            content_sha256=info.content_sha256,
            start_s=start_s,
            duration_s=duration_s,
            source_width=info.width,
            source_height=info.height,
        )
        if self.blobs.exists(spec.source_key):
            return self.clips.describe(template_id, spec)
        try:
            template = self.clips.clip(template_id)
        except LoopmarkError:
            template = None
        if template is None or not self.clips.is_ready(template):
            raise UploadGone(
                N_(
                    "This upload was already turned into a GIF and deleted; "
                    "please upload the clip again to choose another part."
                )
            )
        return template

    def check_trim(
        self, info: UploadInfo, start_s: float, duration_s: float
    ) -> tuple[float, float]:
        """The trim, rounded to milliseconds and cut to the clip's end; ClipOutOfRange when it
        is not finite, starts outside the clip, or is too short or too long."""
        if not (math.isfinite(start_s) and math.isfinite(duration_s)):
            raise ClipOutOfRange(N_("Start and duration must be finite numbers of seconds."))
        start_s, duration_s = round(start_s, 3), round(duration_s, 3)
        if not 0 <= start_s < info.duration_s - MIN_CLIP_SECONDS / 2:
            raise ClipOutOfRange(
                N_("Start must be from 0 to %(max).1f s (the clip lasts %(length).1f s)."),
                params={
                    "max": max(0.0, info.duration_s - MIN_CLIP_SECONDS),
                    "length": info.duration_s,
                },
            )
        if not MIN_CLIP_SECONDS <= duration_s <= self.max_seconds:
            raise ClipOutOfRange(
                N_("Duration must be from %(min)g to %(max)g seconds."),
                params={"min": MIN_CLIP_SECONDS, "max": self.max_seconds},
            )
        available = round(info.duration_s - start_s, 3)
        if duration_s > available + END_TOLERANCE_SECONDS:
            raise ClipOutOfRange(
                N_("The clip ends %(seconds).1f s after that start; choose a shorter duration."),
                params={"seconds": available},
            )
        return start_s, max(MIN_CLIP_SECONDS, min(duration_s, available))

    def request_render(
        self,
        upload_id: str,
        *,
        start_s: float,
        duration_s: float,
        caption: str,
        wait_s: float = 0.0,
        admit: Callable[[], None] | None = None,
    ) -> RenderOutcome:
        """Render a trim of an upload (or find it rendered): the render service's outcome.
        A new render is admitted only within the cap on upload jobs (UploadsBusy), then by
        ``admit`` (the site's render limits)."""
        template = self.clip_for(upload_id, start_s, duration_s)
        normalised = self.render.check_caption(template.id, caption)
        key = normalised_render_key(template, normalised)

        def admit_upload_job() -> None:
            self._admit_job(key)
            if admit is not None:
                try:
                    admit()
                except BaseException:
                    self._forget_job(key)
                    raise

        outcome = self.render.request(template.id, caption, wait_s=wait_s, admit=admit_upload_job)
        if outcome.status == "done" and not self.clips.keep_uploads:
            # Rendered already (the same clip and choices): this upload is processed too, once
            # the clip's frames are kept for later captions.
            with suppress(StorageUnavailable):
                if self.clips.is_stored(template):
                    self.blobs.delete(source_key(upload_id))
        return outcome

    def _admit_job(self, key: str) -> None:
        with self._jobs_lock:
            self._prune_jobs()
            if len(self._jobs) >= self.max_jobs and key not in self._jobs:
                raise UploadsBusy(
                    N_("Many clips are being made right now; please try again in a few seconds."),
                    retry_after_s=max(1, math.ceil(self.render.render_times.expected("") or 1)),
                )
            self._jobs[key] = self.clock()

    def _forget_job(self, key: str) -> None:
        with self._jobs_lock:
            self._jobs.pop(key, None)

    def _prune_jobs(self) -> None:
        """Forget admitted jobs that finished (or never started: a refusal after admission)."""
        now = self.clock()
        for key, admitted_at in list(self._jobs.items()):
            record = self.render.record(key)
            if record is None:
                if now - admitted_at > self.render.lease_seconds:
                    del self._jobs[key]
            elif record.status not in ("queued", "rendering"):
                del self._jobs[key]

    def jobs_in_flight(self) -> int:
        with self._jobs_lock:
            self._prune_jobs()
            return len(self._jobs)

    # -- retention -----------------------------------------------------------------------------

    def collect_garbage(self, prepared_dirs: list[Path], *, dry_run: bool = False) -> int:
        """``loopmark gc``: delete uploads older than UPLOAD_TTL_SECONDS (never processed, or
        kept), clip descriptions and prepared clips unused for CLIP_PREPARED_TTL_SECONDS.
        Returns how many storage keys and prepared folders were deleted (or would be)."""
        now = self.clock()
        expired = [
            blob.key
            for blob in self.blobs.list(INCOMING_PREFIX)
            if blob.modified_at < now - _lifetime(blob.key)
        ]
        folders = [
            folder
            for base in prepared_dirs
            if base.is_dir()
            for folder in base.iterdir()
            if is_clip_id(folder.name)
            and folder.is_dir()
            and _last_used(folder) < now - CLIP_PREPARED_TTL_SECONDS
        ]
        if not dry_run:
            for key in expired:
                with suppress(FileNotFoundError):
                    self.blobs.delete(key)
            for folder in folders:
                shutil.rmtree(folder, ignore_errors=True)
        return len(expired) + len(folders)


def _lifetime(key: str) -> float:
    """How long an incoming key lives: clip descriptions as long as prepared clips."""
    return CLIP_PREPARED_TTL_SECONDS if key.startswith(CLIP_SPECS_PREFIX) else UPLOAD_TTL_SECONDS


def _last_used(folder: Path) -> float:
    """The newest modification time in a prepared clip's folder (itself and its versions)."""
    times = [folder.stat().st_mtime]
    times += [child.stat().st_mtime for child in folder.iterdir()]
    return max(times)
