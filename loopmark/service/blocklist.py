"""Take-downs kept beside the media, so that they outlive the records that first held them.

A take-down blocks its key in the records and also writes one small object per key to storage,
``blocked/<key>.json`` (the key, the reason, when). One object per key, not one shared document:
two take-downs at once never race on a read-modify-write, on S3 or on disk, and nothing needs an
ETag condition. When the database is restored from an older backup (or a new table replaces the
old one) the records forget the block; :func:`reapply` blocks those keys again — it runs in
``loopmark setup``, when ``loopmark serve`` starts, and after ``loopmark restore`` — and the site
checks :class:`Blocklist` too (a set of keys listed from storage, refreshed every few minutes), so
a share page, ``/media/`` and ``/m/`` answer 410 for a blocked key whatever the records say.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from loopmark.errors import BadInput, LoopmarkError
from loopmark.records.renders import RenderRecord, RenderStatus
from loopmark.renderer.render import KEY_CHARS
from loopmark.storage.base import BlobStore

log = logging.getLogger(__name__)

BLOCKED_PREFIX = "blocked/"
MARKER_SUFFIX = ".json"
# How often a process lists the markers again (take-downs elsewhere also block the shared
# records, which every check reads too, so this only bounds how long a restore goes unseen).
BLOCKLIST_REFRESH_SECONDS = 300.0
# After a failed listing (storage down) the old set is kept and the listing tried this much later.
BLOCKLIST_RETRY_SECONDS = 30.0
MAX_REASON_CHARS = 500

RENDER_KEY_RE = re.compile(rf"[a-z2-7]{{{KEY_CHARS}}}")
_MARKER_RE = re.compile(rf"{re.escape(BLOCKED_PREFIX)}([a-z2-7]{{{KEY_CHARS}}}){MARKER_SUFFIX}")


def check_render_key(key: str) -> str:
    """``key`` when it has the shape of a render key (24 of a-z, 2-7), else BadInput."""
    if RENDER_KEY_RE.fullmatch(key) is None:
        raise BadInput(f"not a render key (24 of a-z and 2-7): {key[:40]!r}")
    return key


def marker_key(key: str) -> str:
    return f"{BLOCKED_PREFIX}{check_render_key(key)}{MARKER_SUFFIX}"


@dataclass(frozen=True)
class BlockMarker:
    key: str
    reason: str
    blocked_at: float  # epoch seconds


def write_marker(blobs: BlobStore, key: str, *, reason: str, at: float) -> None:
    """Store the take-down of ``key`` beside the media (one atomic put of its own object)."""
    body = {"key": key, "reason": reason[:MAX_REASON_CHARS], "blocked_at": round(at, 3)}
    data = json.dumps(body, ensure_ascii=False, sort_keys=True).encode()
    blobs.put(marker_key(key), data, content_type="application/json")


def marked_keys(blobs: BlobStore) -> set[str]:
    """Every key with a marker in storage (one listing; no object is read)."""
    found = set()
    for blob in blobs.list(BLOCKED_PREFIX):
        match = _MARKER_RE.fullmatch(blob.key)
        if match is not None:
            found.add(match[1])
    return found


def read_marker(blobs: BlobStore, key: str) -> BlockMarker:
    """The marker of ``key``; a damaged one still blocks, with a reason that says so."""
    try:
        body = json.loads(blobs.get(marker_key(key)))
        return BlockMarker(key, str(body["reason"]), float(body["blocked_at"]))
    except (ValueError, KeyError, TypeError):
        return BlockMarker(key, "taken down (its marker in storage was unreadable)", 0.0)


def copy_markers(source: BlobStore, target: BlobStore) -> int:
    """Copy every marker of ``source`` that ``target`` lacks (backup and restore); how many."""
    missing = marked_keys(source) - marked_keys(target)
    for key in sorted(missing):
        target.put(marker_key(key), source.get(marker_key(key)), content_type="application/json")
    return len(missing)


class TakesDown(Protocol):
    """What :func:`reapply` needs of the render service."""

    def record(self, key: str) -> RenderRecord | None: ...

    def take_down(self, key: str, *, reason: str) -> None: ...


def reapply(blobs: BlobStore, render: TakesDown) -> list[str]:
    """Take down again every key blocked in storage but not in the records (a restored or new
    database); the keys it took down. Its media are deleted and purged again as well, in case
    they were restored too."""
    again = []
    for key in sorted(marked_keys(blobs)):
        record = render.record(key)
        if record is not None and record.status == RenderStatus.BLOCKED:
            continue
        marker = read_marker(blobs, key)
        render.take_down(key, reason=marker.reason)
        again.append(key)
    if again:
        log.warning("re-applied %d take-downs the records had lost: %s", len(again), again)
    return again


class Blocklist:
    """The keys blocked in storage, held in memory for the site's checks (a set lookup).

    Listed on first use and again every ``refresh_s``; a listing that fails keeps the old set
    (and a first one that fails leaves it empty: the records' own block still holds) and is
    retried after BLOCKLIST_RETRY_SECONDS, never on every request.
    """

    def __init__(
        self,
        blobs: BlobStore,
        *,
        refresh_s: float = BLOCKLIST_REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.blobs = blobs
        self.refresh_s = refresh_s
        self.clock = clock
        self._keys: frozenset[str] = frozenset()
        self._next_listing = 0.0
        self._lock = threading.Lock()

    def __contains__(self, key: object) -> bool:
        self._refresh()
        return key in self._keys

    def __iter__(self) -> Iterator[str]:
        self._refresh()
        return iter(sorted(self._keys))

    def add(self, key: str) -> None:
        """Count ``key`` as blocked in this process at once (its marker is written already)."""
        with self._lock:
            self._keys = self._keys | {key}

    def _refresh(self) -> None:
        if self.clock() < self._next_listing or not self._lock.acquire(blocking=False):
            return  # fresh, or another thread is listing: the current set answers meanwhile
        try:
            try:
                self._keys = frozenset(marked_keys(self.blobs)) | self._keys
                self._next_listing = self.clock() + self.refresh_s
            except LoopmarkError as exc:
                log.warning("blocklist not listed (the records' blocks still hold): %s", exc)
                self._next_listing = self.clock() + BLOCKLIST_RETRY_SECONDS
        finally:
            self._lock.release()
