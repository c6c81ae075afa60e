"""Retention: when renders were last asked for, and ``loopmark gc``, which drops what nobody wants.

*Last requested.* A render's share page, result page and media links note its key in a
:class:`HitLog`: a set in memory, so the request path takes a lock and a dict lookup, nothing
more. A daemon thread writes the new keys every HIT_FLUSH_SECONDS in one batch (and ``close``
writes the rest), and a key is written at most once a UTC day per process. The statistics could
not serve: they count per template and caption, not per key; and a ``last_hit_at`` column on the
render record would put a write on the record every render path reads, in a module another
change owns, so hits are their own small record kind (records.retention). Behind a CDN the site
sees a share page about once a minute while it is being viewed (HTML is cached 60 s), which is
more than a day's precision needs; media URLs are immutable and never reach the site.

*Collecting garbage* (:func:`collect_garbage`): done renders last asked for (or, never asked
for, made) before the cutoff lose their record and their media, so a later request renders them
afresh; gallery entries and taken-down keys are never touched (the block markers under
``blocked/`` are not even listed). Media left without a record (an older database restored, a
crash between store and record) go too once they are older than the cutoff, as do the media of a
blocked key that reappeared. On SQLite, failed and abandoned records past their keep time are
deleted (DynamoDB's TTL does that), with ended admin sessions and old failed logins; and temporary
files and folders under the data directory (interrupted writes, preparations, uploads) older than
TEMP_MAX_AGE_SECONDS. Visitors' reports go when their render is taken down or forgotten, and
once older than the cutoff in any case (service.reports).
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from loopmark.errors import LoopmarkError
from loopmark.records.renders import RenderRecord, RenderStatus
from loopmark.records.retention import DEAD_RECORD_KEEP_SECONDS, RetentionRecords
from loopmark.service.blocklist import RENDER_KEY_RE
from loopmark.service.render_service import RenderService, media_keys
from loopmark.service.reports import Reports
from loopmark.storage.base import StoredBlob

log = logging.getLogger(__name__)

SECONDS_PER_DAY = 86_400
HIT_FLUSH_SECONDS = 60.0
# Keys waiting to be written at most; beyond it (the records down for long) new hits are dropped.
MAX_PENDING_HITS = 100_000
# Names of temporary files and folders that interrupted work leaves (storage.local's ".tmp-",
# prepare's ".building-", template authoring's ".adding-" and ".template-", backups' ".partial").
TEMP_PREFIXES = (".tmp-", ".building-", ".adding-", ".template-", "loopmark-upload-")
TEMP_SUFFIXES = (".partial",)
# Younger ones may belong to work in progress.
TEMP_MAX_AGE_SECONDS = 3600.0
RENDER_MEDIA_PREFIX = "r/"
LIST_PAGE = 200


class HitLog:
    """Render keys asked for, written in batches at most once a day per key (see module doc)."""

    def __init__(
        self,
        records: RetentionRecords,
        *,
        flush_s: float = HIT_FLUSH_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.records = records
        self.flush_s = flush_s
        self.clock = clock
        self._pending: set[str] = set()
        self._written_day: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def seen(self, key: str) -> None:
        """Note that ``key`` was asked for now (cheap: memory only)."""
        day = int(self.clock() // SECONDS_PER_DAY)
        with self._lock:
            if self._written_day.get(key) == day or len(self._pending) >= MAX_PENDING_HITS:
                return
            self._written_day[key] = day
            self._pending.add(key)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="hit-log", daemon=True)
                self._thread.start()

    def flush(self) -> int:
        """Write the pending keys now; how many. On a records error they wait for the next."""
        with self._lock:
            keys, self._pending = sorted(self._pending), set()
            if len(self._written_day) > MAX_PENDING_HITS:  # a new day: forget older ones
                today = int(self.clock() // SECONDS_PER_DAY)
                self._written_day = {k: d for k, d in self._written_day.items() if d == today}
        if not keys:
            return 0
        try:
            self.records.touch(keys, self.clock())
        except LoopmarkError as exc:
            log.warning("%d render hits not written yet: %s", len(keys), exc.reason)
            with self._lock:
                self._pending.update(keys[: MAX_PENDING_HITS - len(self._pending)])
            return 0
        return len(keys)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.flush_s + 5)
        self.flush()
        self.records.close()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_s):
            self.flush()


@dataclass
class GcReport:
    dry_run: bool
    renders: int = 0  # done renders forgotten (record and media)
    kept_gallery: int = 0  # stale, but in the gallery
    orphans: int = 0  # media keys without a record (or blocked) deleted
    files: int = 0  # media files deleted
    bytes: int = 0  # their size
    dead_records: int = 0  # failed / abandoned records
    admin_rows: int = 0  # ended sessions, old failed logins
    temporary: int = 0  # temporary files and folders
    uploads: int = 0  # expired visitor uploads, clip descriptions and prepared clips
    reports: int = 0  # visitors' reports: of renders dealt with, or past the cutoff

    def line(self, days: int) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        text = (
            f"gc ({days} days): {verb} {self.renders} renders nobody asked for, "
            f"{self.orphans} orphaned media keys ({self.files} files, {self.bytes:,} bytes), "
            f"{self.dead_records} failed records, {self.admin_rows} old sessions and failed "
            f"logins, {self.temporary} temporary files, {self.uploads} expired uploads and "
            f"clips, {self.reports} reports; kept {self.kept_gallery} in the gallery"
        )
        return text


def collect_garbage(
    *,
    render: RenderService,
    retention: RetentionRecords,
    gallery_keys: set[str],
    forget_admin_rows: Callable[[bool], int],
    data_dir: Path,
    days: int,
    dry_run: bool,
    now: float | None = None,
    reports: Reports | None = None,
) -> GcReport:
    """Delete what retention drops (see the module doc); what was (or would be) deleted."""
    now = time.time() if now is None else now
    cutoff = now - days * SECONDS_PER_DAY
    report = GcReport(dry_run=dry_run)
    for page in _done_before(render, cutoff):
        hits = retention.last_hits([record.key for record in page])
        for record in page:
            if hits.get(record.key, record.updated_at) >= cutoff:
                continue
            if record.key in gallery_keys:
                report.kept_gallery += 1
                continue
            if not dry_run and not retention.forget_render(
                record.key, updated_at=record.updated_at
            ):
                continue  # taken down or rendered again meanwhile
            render.records.forget(record.key)  # changed beside the render service's port
            report.renders += 1
            _delete_media(render, record.key, report)
    _collect_orphans(render, gallery_keys, cutoff, report)
    report.dead_records = retention.forget_dead(
        older_than=now - DEAD_RECORD_KEEP_SECONDS, dry_run=dry_run
    )
    report.admin_rows = forget_admin_rows(dry_run)
    report.temporary = _collect_temporary(data_dir, now - TEMP_MAX_AGE_SECONDS, dry_run)
    if reports is not None:
        report.reports = reports.collect_garbage(
            older_than=cutoff, resolved=lambda key: _dealt_with(render, key), dry_run=dry_run
        )
    return report


def _dealt_with(render: RenderService, key: str) -> bool:
    """A reported render needs no look any more: taken down, or its record is gone (forgotten
    by retention, so its page answers 404)."""
    record = render.record(key)
    return record is None or record.status == RenderStatus.BLOCKED


def _done_before(render: RenderService, cutoff: float) -> Iterator[list[RenderRecord]]:
    """Done renders last changed before ``cutoff``, a page at a time, newest first."""
    before = cutoff
    while page := render.recent(limit=LIST_PAGE, before=before):
        yield page
        before = page[-1].updated_at


def _media_folder(key: str) -> str:
    return media_keys(key)["gif"].rpartition("/")[0] + "/"


def _delete_blobs(render: RenderService, blobs: list[StoredBlob], report: GcReport) -> None:
    for blob in blobs:
        report.files += 1
        report.bytes += blob.size
        if not report.dry_run:
            render.blobs.delete(blob.key)


def _delete_media(render: RenderService, key: str, report: GcReport) -> None:
    _delete_blobs(render, list(render.blobs.list(_media_folder(key))), report)


def _collect_orphans(
    render: RenderService, gallery_keys: set[str], cutoff: float, report: GcReport
) -> None:
    """Media under ``r/`` whose render has no record (or is blocked), older than the cutoff."""

    def render_key(blob: StoredBlob) -> str:
        parts = blob.key.split("/")
        return parts[2] if len(parts) == 4 else ""

    # Both adapters list a key's files together (one folder; S3's lexicographic order).
    for key, group in itertools.groupby(render.blobs.list(RENDER_MEDIA_PREFIX), key=render_key):
        blobs = list(group)
        if not RENDER_KEY_RE.fullmatch(key) or key in gallery_keys:
            continue
        if max(blob.modified_at for blob in blobs) >= cutoff:
            continue
        record = render.record(key)
        if record is not None and record.status != RenderStatus.BLOCKED:
            continue
        report.orphans += 1
        _delete_blobs(render, blobs, report)


def _collect_temporary(data_dir: Path, older_than: float, dry_run: bool) -> int:
    """Temporary files and folders under ``data_dir`` older than ``older_than``; how many."""
    found = 0
    if not data_dir.is_dir():
        return 0
    for folder, dirnames, filenames in os.walk(data_dir):
        for name in [*dirnames, *filenames]:
            if not (name.startswith(TEMP_PREFIXES) or name.endswith(TEMP_SUFFIXES)):
                continue
            path = Path(folder) / name
            try:
                if path.lstat().st_mtime >= older_than:
                    continue
                found += 1
                if not dry_run:
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path)
                    else:
                        path.unlink()
            except FileNotFoundError:
                continue
            if name in dirnames:
                dirnames.remove(name)  # never walk into what is being removed
    return found
