"""Render records: the render cache's records, the durable queue, the rendering lease and its
rules, on SQLite and DynamoDB.

A render's record is looked up by its content key. An accepted render is *enqueued* (status
"queued", recorded before the visitor is told it was accepted), so a server that dies or stops
finds it again (:meth:`RenderRecords.list_unfinished`) and dispatches it once more. A render first
*claims the lease* (one
conditional write), reports progress by *extending* it, and finally marks the record *done*
(only after its media are stored) or *failed*. A lease that is not extended in time belongs to
a crashed render: exactly one contender may take it over. An admin's take-down *blocks* a key
for ever. Both adapters implement the same rules: :func:`claimable` states them once in Python
for the SQLite adapter, which decides inside a transaction; the DynamoDB adapter states them as
one conditional write each.

SQLite: table ``render_records``; every lease change is one ``BEGIN IMMEDIATE`` transaction.

DynamoDB (the shared table): one item per render key (a hex hash, partition key ``key``, which no
other kind's prefixed key can collide with). Every lease rule is one conditional write, so it
holds across Lambda instances. TTL only ever garbage-collects failed records; it is never the
lease (DynamoDB deletes expired items up to days late, so a lease read from TTL would be a lie).
Done records carry ``listing``, the partition of the table's sparse index RECENT_INDEX, which
list_recent reads; queued and rendering records carry another partition of the same index
(UNFINISHED_PARTITION), which list_unfinished reads oldest first.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from loopmark.records.backend import open_adapter
from loopmark.records.common import Clock
from loopmark.records.dynamodb import (
    RECENT_INDEX,
    ConditionFailed,
    DynamoAdapter,
    attribute_names,
    number,
)
from loopmark.records.sqlite import SqliteAdapter

# A render that crashes or fails this many times is not tried again (its record stays "failed").
MAX_ATTEMPTS = 3
# How long a claimed lease lasts unless extended (SECURITY.md, "Starting limits").
LEASE_SECONDS = 10.0
# list_recent never reads more than this many records in one call, whatever the caller asks.
MAX_LIST_LIMIT = 200

# DynamoDB: failed records are garbage after this long (TTL); a record that is gone may be tried
# afresh.
FAILED_RECORD_TTL_SECONDS = 7 * 24 * 3600
# DynamoDB: list_recent reads the table's sparse index RECENT_INDEX: only done render records carry
# its partition attribute ``listing``. Filters (template, caption) apply after DynamoDB's Limit, so
# a filtered listing reads pages of LIST_PAGE_ITEMS, at most LIST_MAX_PAGES of them, then returns
# what it has.
RECENT_PARTITION = "render#done"
# DynamoDB: queued and rendering records, in the same index; list_unfinished reads it oldest first.
UNFINISHED_PARTITION = "render#unfinished"
LIST_PAGE_ITEMS = 100
LIST_MAX_PAGES = 10


class RenderStatus(StrEnum):
    """A record's status. Members are ``str``, so ``record.status == "done"`` works as well."""

    QUEUED = "queued"
    RENDERING = "rendering"
    DONE = "done"
    FAILED = "failed"
    BLOCKED = "blocked"


@dataclass(frozen=True)
class RenderRecord:
    """What the cache knows about one render key."""

    key: str
    status: RenderStatus
    template_id: str
    caption: str
    owner: str | None
    lease_until: float  # epoch seconds; 0 when no lease is held
    progress: float  # 0..1, real frame progress reported by the renderer
    attempts: int
    created_at: float  # epoch seconds
    updated_at: float  # epoch seconds
    # On done: storage keys gif/mp4/poster/card, bytes, frames, ...; while rendering, those of
    # the renditions stored so far (record_renditions); None before the first.
    media: dict[str, Any] | None
    error: str | None  # on failed: why; on blocked: the take-down reason
    # What a queued render needs to be dispatched again after a restart: the word lists' version
    # its caption was accepted against (None: unknown), and when it was (last) queued.
    words_version: int | None = None
    queued_at: float = 0.0  # epoch seconds; 0 when it never was

    def lease_live(self, now: float) -> bool:
        """True while a render holds an unexpired lease on this key."""
        return self.status == RenderStatus.RENDERING and self.lease_until >= now


def claimable(record: RenderRecord | None, now: float) -> bool:
    """Whether ``claim_lease`` may take this key at ``now``.

    Free when there is no record, when it is queued (queueing uses up no attempt), when a
    render's lease has expired (it crashed: take over), or when a render failed; the last two
    only while fewer than MAX_ATTEMPTS were made, so an input that kills its worker every time is
    not retried for ever. "done" and "blocked" are never claimed.
    """
    if record is None or record.status == RenderStatus.QUEUED:
        return True
    if record.status == RenderStatus.RENDERING:
        return record.lease_until < now and record.attempts < MAX_ATTEMPTS
    if record.status == RenderStatus.FAILED:
        return record.attempts < MAX_ATTEMPTS
    return False


def enqueueable(record: RenderRecord | None, now: float) -> bool:
    """Whether ``enqueue`` records this key as queued at ``now``: whenever it could be claimed,
    unless it is queued already (its place, ``queued_at``, is kept)."""
    return claimable(record, now) and (record is None or record.status != RenderStatus.QUEUED)


def unfinished(record: RenderRecord, now: float) -> bool:
    """Whether ``list_unfinished`` returns this record: queued, or rendering under a lease that
    expired (its worker died) with attempts left."""
    if record.status == RenderStatus.QUEUED:
        return True
    return record.status == RenderStatus.RENDERING and claimable(record, now)


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


class RenderRecords(Protocol):
    """The render cache's records. Every method may raise RecordsUnavailable."""

    def setup(self) -> None:
        """Create the schema / table (with TTL attribute ``expires_at``). Idempotent."""
        ...

    def check(self) -> None:
        """Health check: returns when the backend answers, raises RecordsUnavailable otherwise."""
        ...

    def get(self, key: str) -> RenderRecord | None: ...

    def enqueue(
        self, key: str, *, template_id: str, caption: str, words_version: int | None
    ) -> bool:
        """Record an accepted render as queued (one conditional write); True when this call did.

        Only a key that could be claimed (see :func:`enqueueable`): a new key, a failed render or
        a crashed one with attempts left. Queueing uses up no attempt; a key already queued,
        rendering under a live lease, done or blocked is left as it is (False).
        """
        ...

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

    def record_renditions(self, key: str, *, owner: str, media: dict[str, Any]) -> bool:
        """Store the media of a render under way as its renditions land (the GIF first; the
        MP4, poster and card follow), only while ``owner`` holds the lease; the status stays
        "rendering". ``media`` holds the storage key of each rendition stored so far (and its
        sizes); :meth:`complete` writes the whole set."""
        ...

    def complete(self, key: str, *, owner: str, media: dict[str, Any]) -> bool:
        """Mark done with its media (stored before this call), only by the owner; lease cleared."""
        ...

    def fail(self, key: str, *, owner: str, error: str, retryable: bool = False) -> bool:
        """Mark failed, only by the owner; re-claimable until MAX_ATTEMPTS. ``retryable``: the
        failure was the infrastructure's (storage, records), not the render's, so the attempt
        is given back: an outage must not use up a caption's tries."""
        ...

    def release(self, key: str, *, owner: str) -> bool:
        """Hand a render back to the queue (a server stopping before it finished): queued again,
        lease cleared and the attempt given back, only by its owner."""
        ...

    def list_unfinished(self, *, limit: int = 50) -> list[RenderRecord]:
        """Renders accepted but not finished, oldest ``updated_at`` first: queued records, and
        rendering ones whose lease expired with attempts left (see :func:`unfinished`). At most
        MAX_LIST_LIMIT. What a server dispatches again when it starts."""
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


# --- SQLite ---------------------------------------------------------------------------------------

_COLUMNS = (
    "key, status, template_id, caption, owner, lease_until, progress, attempts, "
    "created_at, updated_at, media, error, words_version, queued_at"
)


def _sqlite_record(row: tuple[Any, ...]) -> RenderRecord:
    (key, status, template_id, caption, owner, lease_until, progress, attempts) = row[:8]
    (created_at, updated_at, media, error, words_version, queued_at) = row[8:]
    return RenderRecord(
        key=key,
        status=RenderStatus(status),
        template_id=template_id,
        caption=caption,
        owner=owner,
        lease_until=float(lease_until),
        progress=float(progress),
        attempts=int(attempts),
        created_at=float(created_at),
        updated_at=float(updated_at),
        media=decode_media(media),
        error=error,
        words_version=None if words_version is None else int(words_version),
        queued_at=float(queued_at),
    )


class SqliteRenderRecords(SqliteAdapter):
    """RenderRecords in the ``render_records`` table of a SqliteDatabase."""

    def check(self) -> None:
        with self.db.connection() as conn:
            conn.execute("SELECT 1 FROM render_records LIMIT 1").fetchall()

    def get(self, key: str) -> RenderRecord | None:
        with self.db.connection() as conn:
            return self._select(conn, key)

    def enqueue(
        self, key: str, *, template_id: str, caption: str, words_version: int | None
    ) -> bool:
        with self.db.write() as conn:
            now = self._clock()
            if not enqueueable(self._select(conn, key), now):
                return False
            conn.execute(
                """
                INSERT INTO render_records (key, status, template_id, caption, caption_fold,
                    owner, lease_until, progress, attempts, created_at, updated_at, media, error,
                    words_version, queued_at)
                VALUES (?, 'queued', ?, ?, ?, NULL, 0, 0, 0, ?, ?, NULL, NULL, ?, ?)
                ON CONFLICT (key) DO UPDATE SET
                    status = 'queued', template_id = excluded.template_id,
                    caption = excluded.caption, caption_fold = excluded.caption_fold,
                    owner = NULL, lease_until = 0, progress = 0, updated_at = excluded.updated_at,
                    media = NULL, error = NULL, words_version = excluded.words_version,
                    queued_at = excluded.queued_at
                """,
                (key, template_id, caption, fold_caption(caption), now, now, words_version, now),
            )
            return True

    def claim_lease(
        self, key: str, *, owner: str, template_id: str, caption: str, lease_seconds: float
    ) -> RenderRecord | None:
        with self.db.write() as conn:
            # Read the clock under the write lock: no other claim can land between the check
            # and the write, and "now" is not stale by the time we waited for the lock.
            now = self._clock()
            current = self._select(conn, key)
            if not claimable(current, now):
                return None
            record = RenderRecord(
                key=key,
                status=RenderStatus.RENDERING,
                template_id=template_id,
                caption=caption,
                owner=owner,
                lease_until=now + lease_seconds,
                progress=0.0,
                attempts=(current.attempts if current else 0) + 1,
                created_at=current.created_at if current else now,
                updated_at=now,
                media=None,
                error=None,
                words_version=current.words_version if current else None,
                queued_at=current.queued_at if current else 0.0,
            )
            conn.execute(
                """
                INSERT INTO render_records (key, status, template_id, caption, caption_fold,
                    owner, lease_until, progress, attempts, created_at, updated_at, media, error)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)
                ON CONFLICT (key) DO UPDATE SET
                    status = excluded.status, template_id = excluded.template_id,
                    caption = excluded.caption, caption_fold = excluded.caption_fold,
                    owner = excluded.owner, lease_until = excluded.lease_until,
                    progress = excluded.progress, attempts = excluded.attempts,
                    updated_at = excluded.updated_at, media = NULL, error = NULL
                """,
                (
                    key,
                    RenderStatus.RENDERING.value,
                    template_id,
                    caption,
                    fold_caption(caption),
                    owner,
                    record.lease_until,
                    record.progress,
                    record.attempts,
                    record.created_at,
                    record.updated_at,
                ),
            )
            return record

    def extend_lease(self, key: str, *, owner: str, lease_seconds: float, progress: float) -> bool:
        with self.db.write() as conn:
            now = self._clock()
            cursor = conn.execute(
                """
                UPDATE render_records SET lease_until = ?, progress = ?, updated_at = ?
                WHERE key = ? AND status = 'rendering' AND owner = ?
                """,
                (now + lease_seconds, clamp_progress(progress), now, key, owner),
            )
            return cursor.rowcount == 1

    def record_renditions(self, key: str, *, owner: str, media: dict[str, Any]) -> bool:
        with self.db.write() as conn:
            cursor = conn.execute(
                """
                UPDATE render_records SET media = ?, updated_at = ?
                WHERE key = ? AND status = 'rendering' AND owner = ?
                """,
                (encode_media(media), self._clock(), key, owner),
            )
            return cursor.rowcount == 1

    def complete(self, key: str, *, owner: str, media: dict[str, Any]) -> bool:
        with self.db.write() as conn:
            cursor = conn.execute(
                """
                UPDATE render_records SET status = 'done', media = ?, owner = NULL,
                    lease_until = 0, progress = 1, error = NULL, updated_at = ?
                WHERE key = ? AND status = 'rendering' AND owner = ?
                """,
                (encode_media(media), self._clock(), key, owner),
            )
            return cursor.rowcount == 1

    def fail(self, key: str, *, owner: str, error: str, retryable: bool = False) -> bool:
        with self.db.write() as conn:
            cursor = conn.execute(
                """
                UPDATE render_records SET status = 'failed', error = ?, owner = NULL,
                    lease_until = 0, updated_at = ?, attempts = attempts - ?
                WHERE key = ? AND status = 'rendering' AND owner = ?
                """,
                (error, self._clock(), 1 if retryable else 0, key, owner),
            )
            return cursor.rowcount == 1

    def release(self, key: str, *, owner: str) -> bool:
        with self.db.write() as conn:
            now = self._clock()
            cursor = conn.execute(
                """
                UPDATE render_records SET status = 'queued', owner = NULL, lease_until = 0,
                    progress = 0, attempts = max(0, attempts - 1), updated_at = ?, queued_at = ?
                WHERE key = ? AND status = 'rendering' AND owner = ?
                """,
                (now, now, key, owner),
            )
            return cursor.rowcount == 1

    def list_unfinished(self, *, limit: int = 50) -> list[RenderRecord]:
        # Both halves are read through the (status, updated_at) index, oldest first.
        sql = f"""
            SELECT {_COLUMNS} FROM render_records
            WHERE status = 'queued'
                OR (status = 'rendering' AND lease_until < ? AND attempts < ?)
            ORDER BY updated_at, key LIMIT ?
        """
        with self.db.connection() as conn:
            rows = conn.execute(sql, (self._clock(), MAX_ATTEMPTS, clamp_limit(limit)))
            return [_sqlite_record(row) for row in rows.fetchall()]

    def block(self, key: str, *, reason: str) -> None:
        # Media (if any) stay on the record so the take-down can find the blobs to delete;
        # status "blocked" is what says they are never served again.
        with self.db.write() as conn:
            now = self._clock()
            conn.execute(
                """
                INSERT INTO render_records (key, status, template_id, caption, caption_fold,
                    owner, lease_until, progress, attempts, created_at, updated_at, media, error)
                VALUES (?, 'blocked', '', '', '', NULL, 0, 0, 0, ?, ?, NULL, ?)
                ON CONFLICT (key) DO UPDATE SET
                    status = 'blocked', owner = NULL, lease_until = 0,
                    updated_at = excluded.updated_at, error = excluded.error
                """,
                (key, now, now, reason),
            )

    def list_recent(
        self,
        *,
        limit: int = 50,
        before: float | None = None,
        template_id: str | None = None,
        query: str | None = None,
    ) -> list[RenderRecord]:
        where = ["status = 'done'"]
        params: list[Any] = []
        if before is not None:
            where.append("updated_at < ?")
            params.append(before)
        if template_id is not None:
            where.append("template_id = ?")
            params.append(template_id)
        if query:
            # instr, not LIKE: the query's own % and _ must match literally.
            where.append("instr(caption_fold, ?) > 0")
            params.append(fold_caption(query))
        params.append(clamp_limit(limit))
        sql = (
            f"SELECT {_COLUMNS} FROM render_records WHERE {' AND '.join(where)} "
            "ORDER BY updated_at DESC, key DESC LIMIT ?"
        )
        with self.db.connection() as conn:
            return [_sqlite_record(row) for row in conn.execute(sql, params).fetchall()]

    @staticmethod
    def _select(conn: sqlite3.Connection, key: str) -> RenderRecord | None:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM render_records WHERE key = ?", (key,)
        ).fetchone()
        return None if row is None else _sqlite_record(row)


# --- DynamoDB -------------------------------------------------------------------------------------


def _string(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return None if value is None or "S" not in value else str(value["S"])


def _float(item: dict[str, Any], name: str) -> float:
    value = item.get(name)
    return 0.0 if value is None or "N" not in value else float(value["N"])


def _dynamo_record(item: dict[str, Any]) -> RenderRecord:
    return RenderRecord(
        key=_string(item, "key") or "",
        status=RenderStatus(_string(item, "status") or ""),
        template_id=_string(item, "template_id") or "",
        caption=_string(item, "caption") or "",
        owner=_string(item, "owner"),
        lease_until=_float(item, "lease_until"),
        progress=_float(item, "progress"),
        attempts=int(_float(item, "attempts")),
        created_at=_float(item, "created_at"),
        updated_at=_float(item, "updated_at"),
        media=decode_media(_string(item, "media")),
        error=_string(item, "error"),
        words_version=int(_float(item, "words_version")) if "words_version" in item else None,
        queued_at=_float(item, "queued_at"),
    )


_HELD_BY_OWNER = "#status = :rendering AND #owner = :owner"
# enqueueable and claimable as DynamoDB conditions (the same rules as the Python functions).
_CRASHED_OR_FAILED = (
    "(#status = :rendering AND lease_until < :now AND attempts < :max_attempts)"
    " OR (#status = :failed AND attempts < :max_attempts)"
)
_ENQUEUEABLE = f"attribute_not_exists(#key) OR {_CRASHED_OR_FAILED}"
_CLAIMABLE = f"attribute_not_exists(#key) OR #status = :queued OR {_CRASHED_OR_FAILED}"


class DynamoRenderRecords(DynamoAdapter):
    """RenderRecords as items of a DynamoTable; every lease rule is one conditional write."""

    def check(self) -> None:
        self.table.check()

    def get(self, key: str) -> RenderRecord | None:
        item = self.table.get_item(key)  # strongly consistent, as a lease decision needs
        # DynamoDB applies an update atomically, but moto's server lets a reader see an item it is
        # still filling in; an item without a status is not a record yet.
        if item is None or "status" not in item:
            return None
        return _dynamo_record(item)

    def enqueue(
        self, key: str, *, template_id: str, caption: str, words_version: int | None
    ) -> bool:
        now = self._clock()
        update = (
            "SET #status = :queued, template_id = :template_id, caption = :caption,"
            " caption_fold = :caption_fold, lease_until = :zero, progress = :zero,"
            " updated_at = :now, queued_at = :now, created_at = if_not_exists(created_at, :now),"
            " attempts = if_not_exists(attempts, :zero), listing = :unfinished"
        )
        values: dict[str, Any] = {
            ":queued": {"S": RenderStatus.QUEUED.value},
            ":rendering": {"S": RenderStatus.RENDERING.value},
            ":failed": {"S": RenderStatus.FAILED.value},
            ":template_id": {"S": template_id},
            ":caption": {"S": caption},
            ":caption_fold": {"S": fold_caption(caption)},
            ":zero": number(0),
            ":now": number(now),
            ":max_attempts": number(MAX_ATTEMPTS),
            ":unfinished": {"S": UNFINISHED_PARTITION},
        }
        if words_version is None:
            update += " REMOVE #owner, #error, media, expires_at, words_version"
        else:
            update += ", words_version = :words_version REMOVE #owner, #error, media, expires_at"
            values[":words_version"] = number(words_version)
        # Written before the 202 that accepts a render: the request waits on it (prompt).
        return self._update_if(key, update, _ENQUEUEABLE, values, prompt=True)

    def claim_lease(
        self, key: str, *, owner: str, template_id: str, caption: str, lease_seconds: float
    ) -> RenderRecord | None:
        now = self._clock()
        update = (
            "SET #status = :rendering, #owner = :owner, lease_until = :lease_until,"
            " template_id = :template_id, caption = :caption, caption_fold = :caption_fold,"
            " progress = :zero, updated_at = :now, created_at = if_not_exists(created_at, :now),"
            " attempts = if_not_exists(attempts, :zero) + :one, listing = :unfinished"
            " REMOVE #error, media, expires_at"
        )
        condition = _CLAIMABLE
        try:
            response = self.table.update_item(
                key,
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=attribute_names(update, condition),
                ExpressionAttributeValues={
                    ":queued": {"S": RenderStatus.QUEUED.value},
                    ":rendering": {"S": RenderStatus.RENDERING.value},
                    ":failed": {"S": RenderStatus.FAILED.value},
                    ":owner": {"S": owner},
                    ":lease_until": number(now + lease_seconds),
                    ":template_id": {"S": template_id},
                    ":caption": {"S": caption},
                    ":caption_fold": {"S": fold_caption(caption)},
                    ":zero": number(0),
                    ":one": number(1),
                    ":now": number(now),
                    ":max_attempts": number(MAX_ATTEMPTS),
                    ":unfinished": {"S": UNFINISHED_PARTITION},
                },
                ReturnValues="ALL_NEW",
            )
        except ConditionFailed:
            return None
        return _dynamo_record(response["Attributes"])

    def extend_lease(self, key: str, *, owner: str, lease_seconds: float, progress: float) -> bool:
        now = self._clock()
        update = "SET lease_until = :lease_until, progress = :progress, updated_at = :now"
        return self._update_held(
            key,
            update,
            owner,
            {
                ":lease_until": number(now + lease_seconds),
                ":progress": number(clamp_progress(progress)),
                ":now": number(now),
            },
        )

    def record_renditions(self, key: str, *, owner: str, media: dict[str, Any]) -> bool:
        update = "SET media = :media, updated_at = :now"
        values = {":media": {"S": encode_media(media) or "{}"}, ":now": number(self._clock())}
        return self._update_held(key, update, owner, values)

    def complete(self, key: str, *, owner: str, media: dict[str, Any]) -> bool:
        update = (
            "SET #status = :done, media = :media, progress = :one, lease_until = :zero,"
            " updated_at = :now, listing = :listing"
            " REMOVE #owner, #error, expires_at"
        )
        return self._update_held(
            key,
            update,
            owner,
            {
                ":done": {"S": RenderStatus.DONE.value},
                ":media": {"S": encode_media(media) or "{}"},
                ":one": number(1),
                ":zero": number(0),
                ":now": number(self._clock()),
                ":listing": {"S": RECENT_PARTITION},
            },
        )

    def fail(self, key: str, *, owner: str, error: str, retryable: bool = False) -> bool:
        now = self._clock()
        update = (
            "SET #status = :failed, #error = :error, lease_until = :zero, updated_at = :now,"
            " expires_at = :expires_at, attempts = attempts - :refund"
            " REMOVE #owner, listing"
        )
        return self._update_held(
            key,
            update,
            owner,
            {
                ":failed": {"S": RenderStatus.FAILED.value},
                ":error": {"S": error},
                ":zero": number(0),
                ":now": number(now),
                ":expires_at": number(int(now + FAILED_RECORD_TTL_SECONDS)),
                ":refund": number(1 if retryable else 0),
            },
        )

    def release(self, key: str, *, owner: str) -> bool:
        now = self._clock()
        update = (
            "SET #status = :queued, lease_until = :zero, progress = :zero, updated_at = :now,"
            " queued_at = :now, attempts = attempts - :one REMOVE #owner"
        )
        values = {
            ":queued": {"S": RenderStatus.QUEUED.value},
            ":zero": number(0),
            ":one": number(1),
            ":now": number(now),
        }
        return self._update_held(key, update, owner, values)

    def list_unfinished(self, *, limit: int = 50) -> list[RenderRecord]:
        limit = clamp_limit(limit)
        # Rendering records under a live lease share the partition: the filter drops them after
        # DynamoDB's Limit, so pages are read (a bounded number) until ``limit`` are found.
        condition = "#status = :queued OR (lease_until < :now AND attempts < :max_attempts)"
        params: dict[str, Any] = {
            "TableName": self.table.name,
            "IndexName": RECENT_INDEX,
            "KeyConditionExpression": "listing = :listing",
            "FilterExpression": condition,
            "ExpressionAttributeNames": attribute_names(condition),
            "ExpressionAttributeValues": {
                ":listing": {"S": UNFINISHED_PARTITION},
                ":queued": {"S": RenderStatus.QUEUED.value},
                ":now": number(self._clock()),
                ":max_attempts": number(MAX_ATTEMPTS),
            },
            "ScanIndexForward": True,  # oldest first
            "Limit": max(limit, LIST_PAGE_ITEMS),
        }
        return self._query_pages(params, limit)

    def block(self, key: str, *, reason: str) -> None:
        # Unconditional: a take-down overrides whatever is there, and creates the record if
        # there is none. expires_at is removed, or TTL would one day make the key claimable.
        # Media (if any) stay so the take-down can find the blobs to delete.
        update = (
            "SET #status = :blocked, #error = :reason, lease_until = :zero, updated_at = :now,"
            " created_at = if_not_exists(created_at, :now),"
            " attempts = if_not_exists(attempts, :zero),"
            " progress = if_not_exists(progress, :zero),"
            " template_id = if_not_exists(template_id, :empty),"
            " caption = if_not_exists(caption, :empty),"
            " caption_fold = if_not_exists(caption_fold, :empty)"
            " REMOVE #owner, expires_at, listing"
        )
        self.table.update_item(
            key,
            UpdateExpression=update,
            ExpressionAttributeNames=attribute_names(update),
            ExpressionAttributeValues={
                ":blocked": {"S": RenderStatus.BLOCKED.value},
                ":reason": {"S": reason},
                ":zero": number(0),
                ":now": number(self._clock()),
                ":empty": {"S": ""},
            },
        )

    def list_recent(
        self,
        *,
        limit: int = 50,
        before: float | None = None,
        template_id: str | None = None,
        query: str | None = None,
    ) -> list[RenderRecord]:
        limit = clamp_limit(limit)
        key_condition = "listing = :listing"
        values: dict[str, Any] = {":listing": {"S": RECENT_PARTITION}}
        if before is not None:
            key_condition += " AND updated_at < :before"
            values[":before"] = number(before)
        filters = []
        if template_id is not None:
            filters.append("template_id = :template_id")
            values[":template_id"] = {"S": template_id}
        if query:
            filters.append("contains(caption_fold, :query)")
            values[":query"] = {"S": fold_caption(query)}
        params: dict[str, Any] = {
            "TableName": self.table.name,
            "IndexName": RECENT_INDEX,
            "KeyConditionExpression": key_condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,  # newest first
            "Limit": max(limit, LIST_PAGE_ITEMS) if filters else limit,
        }
        if filters:
            params["FilterExpression"] = " AND ".join(filters)
        return self._query_pages(params, limit)

    def _query_pages(self, params: dict[str, Any], limit: int) -> list[RenderRecord]:
        """Up to ``limit`` records of an index query, reading at most LIST_MAX_PAGES pages."""
        records: list[RenderRecord] = []
        for _ in range(LIST_MAX_PAGES):
            response = self.table.call("query", **params)
            records.extend(_dynamo_record(item) for item in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if len(records) >= limit or not last:
                break
            params["ExclusiveStartKey"] = last
        return records[:limit]

    def _update_held(self, key: str, update: str, owner: str, values: dict[str, Any]) -> bool:
        """Apply ``update`` only while ``owner`` holds the lease; False when it does not."""
        held = {":rendering": {"S": RenderStatus.RENDERING.value}, ":owner": {"S": owner}}
        return self._update_if(key, update, _HELD_BY_OWNER, {**values, **held})

    def _update_if(
        self,
        key: str,
        update: str,
        condition: str,
        values: dict[str, Any],
        *,
        prompt: bool = False,
    ) -> bool:
        """Apply ``update`` as one conditional write; False when ``condition`` does not hold.
        ``prompt``: a request waits on it (see DynamoTable.call)."""
        try:
            self.table.update_item(
                key,
                prompt=prompt,
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=attribute_names(update, condition),
                ExpressionAttributeValues=values,
            )
        except ConditionFailed:
            return False
        return True


def open_render_records(url: str, *, clock: Clock = time.time) -> RenderRecords:
    """The RenderRecords adapter ``url`` (LOOPMARK_RECORDS) names. Opens nothing yet: connections
    are made on first use, and ``setup()`` creates the schema or table. Raises ConfigInvalid for
    an unknown URL.
    """
    return open_adapter(url, sqlite=SqliteRenderRecords, dynamodb=DynamoRenderRecords, clock=clock)
