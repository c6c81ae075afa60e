"""The brand's word lists as the caption policy sees them, cached and kept fresh cheaply, and
the admin's edits to them.

An admin edit is effective for the next caption in the process that made it, and
in every other process within VERSION_CHECK_SECONDS: the records' version counter is one cheap
read, and the lists are reloaded only when it moved.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from loopmark.errors import LoopmarkError
from loopmark.records.words import WordListRecords
from loopmark.renderer.caption_policy import WordLists

log = logging.getLogger(__name__)

VERSION_CHECK_SECONDS = 5.0


class CachedWordLists:
    """Callable: the current WordLists. Falls back to the last good lists if the records fail.

    ``lists``, ``add``, ``remove`` and ``replace`` are the admin's: they read or write the
    records themselves and make a change effective for the next caption here."""

    def __init__(
        self,
        records: WordListRecords,
        *,
        check_s: float = VERSION_CHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.records = records
        self.check_s = check_s
        self.clock = clock
        self._lock = threading.Lock()
        self._lists = WordLists()
        self._version: int | None = None
        self._checked_at = -check_s

    def __call__(self) -> WordLists:
        return self.current()[0]

    def current(self) -> tuple[WordLists, int | None]:
        """The current lists and the records' version they were read at (None before the first
        successful read). A render job carries the version its caption was checked against, so
        a worker checks it again only when the lists have moved since."""
        with self._lock:
            if self.clock() - self._checked_at < self.check_s:
                return self._lists, self._version
            self._checked_at = self.clock()
        try:
            version = self.records.version()  # before lists(): a change in between only reloads
            if version != self._version:
                lists = self.records.lists()
                with self._lock:
                    self._lists, self._version = lists, version
        except LoopmarkError as exc:
            # A records outage must not stop captions; the last lists we had still apply.
            log.warning("word lists unavailable, using the last ones loaded: %s", exc.reason)
        with self._lock:
            return self._lists, self._version

    def lists(self) -> WordLists:
        """The lists as stored now (not the cached copy)."""
        return self.records.lists()

    def add(self, kind: str, word: str) -> None:
        self.records.add(kind, word)
        self.invalidate()

    def remove(self, kind: str, word: str) -> bool:
        removed = self.records.remove(kind, word)
        self.invalidate()
        return removed

    def replace(self, kind: str, words: Iterable[str]) -> int:
        count = self.records.replace(kind, words)
        self.invalidate()
        return count

    def close(self) -> None:
        self.records.close()

    def invalidate(self) -> None:
        """Re-read on the next caption (the admin just changed the lists in this process)."""
        with self._lock:
            self._checked_at = -self.check_s
