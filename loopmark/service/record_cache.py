"""Done render records kept for a moment in the process: the record a crowd's cache hits and
share page views read again and again.

A done record changes only by a take-down (blocked), a purge (retention) or, rarely, a render
made again after its media were lost. Every request for a done key read it from the records
(a SQLite query, a DynamoDB GetItem): about a tenth of a cache hit's CPU on one server, a
network round trip on AWS. :class:`KeptDoneRecords` wraps the render records port (any adapter,
behind its breaker) and keeps a done record for ``keep_s`` (1 s) after it was read. A change
made through this process (a take-down from the admin, a render completing, a purge) forgets
the key at once, so here it shows at once; one made by another process (``loopmark takedown``
from the command line, another Lambda instance) shows within ``keep_s``, well inside the
minute a CDN may keep a page anyway. Records not done (queued, rendering, failed, blocked) and
unknown keys are never kept: their polls see every change.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from loopmark.records.renders import RenderRecord, RenderRecords, RenderStatus

T = TypeVar("T")

KEEP_SECONDS = 1.0
MAX_KEPT = 4096  # about a kilobyte each


class KeptDoneRecords:
    """RenderRecords: reads of done records kept for ``keep_s``; everything else passes."""

    def __init__(
        self,
        records: RenderRecords,
        *,
        keep_s: float = KEEP_SECONDS,
        max_kept: int = MAX_KEPT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.records = records
        self.keep_s = keep_s
        self.max_kept = max_kept
        self.clock = clock
        self._kept: OrderedDict[str, tuple[float, RenderRecord]] = OrderedDict()
        self._lock = threading.Lock()
        # Counts forgets: a read that began before one (and may have seen the record before a
        # write made here) is returned but not kept.
        self._forgets = 0

    def get(self, key: str) -> RenderRecord | None:
        now = self.clock()
        with self._lock:
            kept = self._kept.get(key)
            forgets = self._forgets
        if kept is not None and now - kept[0] < self.keep_s:
            return kept[1]
        record = self.records.get(key)
        with self._lock:
            if forgets != self._forgets:
                pass  # a write raced this read: its record may be from before it
            elif record is not None and record.status == RenderStatus.DONE:
                self._kept[key] = (now, record)
                self._kept.move_to_end(key)
                while len(self._kept) > self.max_kept:
                    self._kept.popitem(last=False)
            else:
                self._kept.pop(key, None)
        return record

    def forget(self, key: str) -> None:
        with self._lock:
            self._kept.pop(key, None)
            self._forgets += 1

    # -- writes: the key is forgotten before and after, and a read racing the write is not kept
    # (``_forgets``): else a read begun before a take-down could keep "done" a second after it

    def enqueue(
        self, key: str, *, template_id: str, caption: str, words_version: int | None
    ) -> bool:
        return self._changing(
            key,
            lambda: self.records.enqueue(
                key, template_id=template_id, caption=caption, words_version=words_version
            ),
        )

    def claim_lease(
        self, key: str, *, owner: str, template_id: str, caption: str, lease_seconds: float
    ) -> RenderRecord | None:
        return self._changing(
            key,
            lambda: self.records.claim_lease(
                key,
                owner=owner,
                template_id=template_id,
                caption=caption,
                lease_seconds=lease_seconds,
            ),
        )

    def extend_lease(self, key: str, *, owner: str, lease_seconds: float, progress: float) -> bool:
        return self.records.extend_lease(
            key, owner=owner, lease_seconds=lease_seconds, progress=progress
        )  # a lease is never held on a done record: nothing kept to forget

    def record_renditions(self, key: str, *, owner: str, media: dict[str, Any]) -> bool:
        return self._changing(
            key, lambda: self.records.record_renditions(key, owner=owner, media=media)
        )

    def complete(self, key: str, *, owner: str, media: dict[str, Any]) -> bool:
        return self._changing(key, lambda: self.records.complete(key, owner=owner, media=media))

    def fail(self, key: str, *, owner: str, error: str, retryable: bool = False) -> bool:
        return self._changing(
            key, lambda: self.records.fail(key, owner=owner, error=error, retryable=retryable)
        )

    def release(self, key: str, *, owner: str) -> bool:
        return self._changing(key, lambda: self.records.release(key, owner=owner))

    def block(self, key: str, *, reason: str) -> None:
        self._changing(key, lambda: self.records.block(key, reason=reason))

    def _changing(self, key: str, write: Callable[[], T]) -> T:
        self.forget(key)
        try:
            return write()
        finally:
            self.forget(key)

    # -- the rest passes through --------------------------------------------------------------

    def setup(self) -> None:
        self.records.setup()

    def check(self) -> None:
        self.records.check()

    def list_unfinished(self, *, limit: int = 50) -> list[RenderRecord]:
        return self.records.list_unfinished(limit=limit)

    def list_recent(
        self,
        *,
        limit: int = 50,
        before: float | None = None,
        template_id: str | None = None,
        query: str | None = None,
    ) -> list[RenderRecord]:
        return self.records.list_recent(
            limit=limit, before=before, template_id=template_id, query=query
        )

    def close(self) -> None:
        with self._lock:
            self._kept.clear()
            self._forgets += 1
        self.records.close()

    def __getattr__(self, name: str) -> Any:
        # An adapter's own extras (the admin's purge, retention's deletes, test helpers): passed
        # through, and everything kept forgotten, since they may change any record.
        attribute = getattr(self.records, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return attribute(*args, **kwargs)
            finally:
                with self._lock:
                    self._kept.clear()
                    self._forgets += 1

        return call
