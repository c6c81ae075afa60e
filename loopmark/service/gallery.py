"""The curated gallery as each server process serves it: an in-memory copy of the records.

Listing the gallery never reads the records on a visitor's request, except for a cheap version
check. :class:`InMemoryGallery` loads the whole curated list (at most MAX_GALLERY_ENTRIES) on
first use, then, on access:

- at most every ``version_check_s`` seconds it reads ``records.version()`` (one SELECT or one
  GetItem) and reloads when the version moved;
- after ``refresh_s`` seconds it reloads anyway, whatever the version says.

Bound: an admin change made through another process is served here at most
``version_check_s`` seconds after it was written (plus one load), so every process converges
within LOOPMARK_GALLERY_VERSION_CHECK_SECONDS (default 5 s). A change made through *this*
process (``add``/``remove``/``reorder``, which the admin calls) writes the records and then
reloads this copy before returning, so it is visible here at once.

When the records cannot be read, a process that has a copy keeps serving it (stale beats
down) and tries again at the next check; a process that never loaded raises
RecordsUnavailable.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from loopmark.errors import LoopmarkError
from loopmark.records.gallery import GalleryEntry, GalleryRecords
from loopmark.records.renders import RenderRecord

log = logging.getLogger(__name__)

# Reload the whole list at least this often, even when the version check says nothing moved
# (a belt-and-braces bound should a version bump ever be missed).
REFRESH_SECONDS = 1800.0
# How often one process asks the records whether the gallery changed: the bound within which
# another process's admin change reaches this one.
VERSION_CHECK_SECONDS = 5.0


class InMemoryGallery:
    """The curated entries held in memory, kept fresh as the module doc says. Thread-safe."""

    def __init__(
        self,
        records: GalleryRecords,
        *,
        refresh_s: float = REFRESH_SECONDS,
        version_check_s: float = VERSION_CHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.records = records
        self.refresh_s = refresh_s
        self.version_check_s = version_check_s
        self._clock = clock
        # Held while loading or writing; readers of a loaded copy never wait for it.
        self._lock = threading.Lock()
        # Replaced whole (never mutated), so a reader holds a consistent list without the lock.
        self._entries: tuple[GalleryEntry, ...] | None = None
        self._version = -1
        self._check_at = 0.0  # clock time of the next version check
        self._refresh_at = 0.0  # clock time of the next unconditional reload

    # -- reading -----------------------------------------------------------------------------

    def entries(self) -> tuple[GalleryEntry, ...]:
        """The curated entries in order (position 0 first), fresh within the documented bound."""
        entries = self._entries
        if entries is None or self._clock() >= self._check_at:
            return self._checked()
        return entries

    def page(self, offset: int, limit: int) -> tuple[tuple[GalleryEntry, ...], bool]:
        """``limit`` entries from ``offset``, and whether more follow."""
        entries = self.entries()
        return entries[offset : offset + limit], offset + limit < len(entries)

    @property
    def version(self) -> int:
        """The records' version of the copy held (-1 before the first load)."""
        return self._version

    def load(self) -> bool:
        """Load now (server start); False, logged, when the records cannot be read."""
        try:
            with self._lock:
                self._reload()
        except LoopmarkError as exc:
            log.warning("gallery not loaded at start (loaded on first use): %s", exc.reason)
            return False
        return True

    def _checked(self) -> tuple[GalleryEntry, ...]:
        first_load = self._entries is None
        # While one thread checks, others keep serving the copy they have; only a process
        # with nothing to serve waits for the first load.
        if not self._lock.acquire(blocking=first_load):
            return self._entries or ()
        try:
            now = self._clock()
            if self._entries is not None and now < self._check_at:
                return self._entries  # another thread checked while we waited
            try:
                if self._entries is None or now >= self._refresh_at:
                    self._reload()
                elif self.records.version() != self._version:
                    self._reload()
                else:
                    self._check_at = self._next_check(now)
            except LoopmarkError as exc:
                if self._entries is None:
                    raise
                log.warning("gallery refresh failed, serving the copy held: %s", exc.reason)
                self._check_at = now + self.version_check_s
            return self._entries or ()
        finally:
            self._lock.release()

    def _reload(self) -> None:
        """Read the version, then the entries (in that order: a change landing in between
        leaves an old version with new entries, and the next check simply reloads again)."""
        version = self.records.version()
        entries = tuple(self.records.entries())
        now = self._clock()
        self._entries, self._version = entries, version
        self._refresh_at = now + self.refresh_s
        self._check_at = self._next_check(now)

    def _next_check(self, now: float) -> float:
        # The reader's fast path looks at one time only: the earlier of the two.
        return min(now + self.version_check_s, self._refresh_at)

    # -- the admin's changes: write the records, then this process's copy at once ------------

    def add(self, record: RenderRecord) -> GalleryEntry:
        """Append a done render (BadInput otherwise; see GalleryRecords.add)."""
        with self._lock:
            entry = self.records.add(record)
            self._reload_after_write()
        return entry

    def remove(self, key: str) -> bool:
        """Take an entry out; False when it was not in the gallery."""
        with self._lock:
            removed = self.records.remove(key)
            self._reload_after_write()
        return removed

    def reorder(self, keys: list[str]) -> None:
        """Set the whole order (BadInput unless ``keys`` is exactly the current set)."""
        with self._lock:
            self.records.reorder(keys)
            self._reload_after_write()

    def _reload_after_write(self) -> None:
        # The write succeeded: a failing read-back must not report it as failed. The copy is
        # then marked stale, so the next access reloads it.
        try:
            self._reload()
        except LoopmarkError as exc:
            log.warning("gallery changed but not reloaded yet: %s", exc.reason)
            self._check_at = self._refresh_at = 0.0

    def close(self) -> None:
        self.records.close()
