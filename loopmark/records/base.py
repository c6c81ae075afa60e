"""The RenderRecords port: the render cache's records, the rendering lease and its rules.

A render's record is looked up by its content key. A render first *claims the lease* (one
conditional write), reports progress by *extending* it, and finally marks the record *done*
(only after its media are stored) or *failed*. A lease that is not extended in time belongs to
a crashed render: exactly one contender may take it over. An admin's take-down *blocks* a key
for ever. Adapters (SQLite, DynamoDB) implement the same rules; :func:`claimable` states them
once in Python for the adapters that decide inside a transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from loopmark.errors import ConfigInvalid

# A render that crashes or fails this many times is not tried again (its record stays "failed").
MAX_ATTEMPTS = 3
# How long a claimed lease lasts unless extended (SECURITY.md, "Starting limits").
LEASE_SECONDS = 90.0
# list_recent never reads more than this many records in one call, whatever the caller asks.
MAX_LIST_LIMIT = 200

Clock = Callable[[], float]


class RenderStatus(StrEnum):
    """A record's status. Members are ``str``, so ``record.status == "done"`` works as well."""

    RENDERING = "rendering"
    DONE = "done"
    FAILED = "failed"
    BLOCKED = "blocked"


@dataclass(frozen=True)
class RenderRecord:
    """What the cache knows about one render key."""

    key: str
    status: str  # a RenderStatus value
    template_id: str
    caption: str
    owner: str | None
    lease_until: float  # epoch seconds; 0 when no lease is held
    progress: float  # 0..1, real frame progress reported by the renderer
    attempts: int
    created_at: float  # epoch seconds
    updated_at: float  # epoch seconds
    media: dict[str, Any] | None  # on done: storage keys gif/mp4/poster, bytes, frames, ...
    error: str | None  # on failed: why; on blocked: the take-down reason

    def lease_live(self, now: float) -> bool:
        """True while a render holds an unexpired lease on this key."""
        return self.status == RenderStatus.RENDERING and self.lease_until >= now


def claimable(record: RenderRecord | None, now: float) -> bool:
    """Whether ``claim_lease`` may take this key at ``now``.

    Free when there is no record, when a render's lease has expired (it crashed: take over), or
    when a render failed; either only while fewer than MAX_ATTEMPTS were made, so an input that
    kills its worker every time is not retried for ever. "done" and "blocked" are never claimed.
    """
    if record is None:
        return True
    if record.status == RenderStatus.RENDERING:
        return record.lease_until < now and record.attempts < MAX_ATTEMPTS
    if record.status == RenderStatus.FAILED:
        return record.attempts < MAX_ATTEMPTS
    return False


def clamp_progress(progress: float) -> float:
    """Progress is a fraction; a renderer's rounding must not store 1.02 or -0.0."""
    return min(1.0, max(0.0, float(progress)))


def clamp_limit(limit: int) -> int:
    return min(MAX_LIST_LIMIT, max(1, int(limit)))


def fold_caption(text: str) -> str:
    """The case-insensitive form list_recent's ``query`` is matched against (stored and asked)."""
    return text.casefold()


def encode_media(media: dict[str, Any] | None) -> str | None:
    """Media are stored as JSON text in every backend: they are read whole, never queried."""
    return None if media is None else json.dumps(media, sort_keys=True, separators=(",", ":"))


def decode_media(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    value = json.loads(text)
    return value if isinstance(value, dict) else None


def split_records_url(url: str) -> tuple[str, str]:
    """``scheme://rest`` → (scheme, rest). Raises ConfigInvalid for anything else."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme or not rest:
        raise ConfigInvalid(
            f"LOOPMARK_RECORDS must look like sqlite:///path or dynamodb://table, got {url!r}"
        )
    return scheme.lower(), rest


class RenderRecords(Protocol):
    """The render cache's records. Every method may raise RecordsUnavailable."""

    def setup(self) -> None:
        """Create the schema / table (with TTL attribute ``expires_at``). Idempotent."""
        ...

    def check(self) -> None:
        """Health check: returns when the backend answers, raises RecordsUnavailable otherwise."""
        ...

    def get(self, key: str) -> RenderRecord | None: ...

    def claim_lease(
        self, key: str, *, owner: str, template_id: str, caption: str, lease_seconds: float
    ) -> RenderRecord | None:
        """One conditional write; the record now held by ``owner`` (attempts + 1), or None.

        See :func:`claimable` for when a key may be claimed.
        """
        ...

    def extend_lease(self, key: str, *, owner: str, lease_seconds: float, progress: float) -> bool:
        """Push the lease forward and store progress, only while ``owner`` holds it.

        A late owner whose lease expired may still extend it if nobody has taken over yet.
        """
        ...

    def complete(self, key: str, *, owner: str, media: dict[str, Any]) -> bool:
        """Mark done with its media (stored before this call), only by the owner; lease cleared."""
        ...

    def fail(self, key: str, *, owner: str, error: str, retryable: bool = False) -> bool:
        """Mark failed, only by the owner; re-claimable until MAX_ATTEMPTS. ``retryable``: the
        failure was the infrastructure's (storage, records), not the render's, so the attempt
        is given back: an outage must not use up a caption's tries."""
        ...

    def block(self, key: str, *, reason: str) -> None:
        """Take-down: status blocked for ever, whatever the record held (or if there was none).

        The reason is kept in ``error``; media, if any, stay on the record so the take-down can
        delete the blobs, and status "blocked" means they are never served again.
        """
        ...

    def list_recent(
        self,
        *,
        limit: int = 50,
        before: float | None = None,
        template_id: str | None = None,
        query: str | None = None,
    ) -> list[RenderRecord]:
        """Done renders, newest ``updated_at`` first, strictly older than ``before`` when given.

        ``query`` is a case-insensitive substring of the caption. At most MAX_LIST_LIMIT.
        """
        ...

    def close(self) -> None:
        """Release connections held between calls (the app's teardown, tests)."""
        ...
