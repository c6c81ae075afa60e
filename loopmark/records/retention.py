"""Retention records: when each render was last asked for, and forgetting what retention drops.

The site notes a render key as *hit* when a page or short link shows it (at most once a day per
key and process, written in batches off the request path: service.retention). ``loopmark gc``
then finds done renders nobody asked for since a cutoff — a render never hit counts from when it
was made — deletes their records (so asking again renders them afresh) and, on SQLite, failed
and abandoned records past their keep time (DynamoDB's TTL does that there).

SQLite: table ``render_hits`` (key, last_hit_at) beside ``render_records``. DynamoDB (the shared
table): one item ``hit#<render key>`` per key with ``last_hit_at``, expiring (TTL) a retention
period after its last hit plus a margin, so hits of deleted renders do not pile up.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

from loopmark.records.backend import open_adapter
from loopmark.records.common import Clock
from loopmark.records.dynamodb import TTL_ATTRIBUTE, ConditionFailed, DynamoAdapter, number
from loopmark.records.renders import MAX_ATTEMPTS
from loopmark.records.sqlite import SqliteAdapter

HIT_PREFIX = "hit#"
# A DynamoDB hit item outlives its last hit by this long (longer than any sensible retention).
HIT_KEEP_SECONDS = 400 * 86_400
# SQLite: failed records, and renders abandoned after MAX_ATTEMPTS crashes, are kept this long
# (DynamoDB's TTL keeps failed ones as long: records.renders.FAILED_RECORD_TTL_SECONDS).
DEAD_RECORD_KEEP_SECONDS = 7 * 86_400
# Writes per SQLite transaction when hits are flushed.
HIT_BATCH = 500


class RetentionRecords(Protocol):
    """Hits and forgetting. Every method may raise RecordsUnavailable."""

    def setup(self) -> None: ...

    def touch(self, keys: Sequence[str], at: float) -> None:
        """Note that ``keys`` were asked for at ``at`` (a later hit is never moved back)."""
        ...

    def last_hits(self, keys: Sequence[str]) -> dict[str, float]:
        """The last hit of each key that has one."""
        ...

    def forget_render(self, key: str, *, updated_at: float) -> bool:
        """Delete a done render's record if it is still done and unchanged since ``updated_at``
        (a take-down or a new render in between wins); True when deleted."""
        ...

    def forget_dead(self, *, older_than: float, dry_run: bool = False) -> int:
        """Delete failed and abandoned render records last changed before ``older_than``; how
        many (0 on DynamoDB, where TTL does it)."""
        ...

    def close(self) -> None: ...


class SqliteRetentionRecords(SqliteAdapter):
    def touch(self, keys: Sequence[str], at: float) -> None:
        for start in range(0, len(keys), HIT_BATCH):
            with self.db.write() as conn:
                conn.executemany(
                    "INSERT INTO render_hits (key, last_hit_at) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET"
                    " last_hit_at = max(last_hit_at, excluded.last_hit_at)",
                    [(key, at) for key in keys[start : start + HIT_BATCH]],
                )

    def last_hits(self, keys: Sequence[str]) -> dict[str, float]:
        hits: dict[str, float] = {}
        with self.db.connection() as conn:
            for start in range(0, len(keys), HIT_BATCH):
                batch = list(keys[start : start + HIT_BATCH])
                marks = ",".join("?" * len(batch))
                rows = conn.execute(
                    f"SELECT key, last_hit_at FROM render_hits WHERE key IN ({marks})", batch
                )
                hits.update((key, float(at)) for key, at in rows)
        return hits

    def forget_render(self, key: str, *, updated_at: float) -> bool:
        with self.db.write() as conn:
            deleted = conn.execute(
                "DELETE FROM render_records WHERE key = ? AND status = 'done' AND updated_at = ?",
                (key, updated_at),
            ).rowcount
            conn.execute("DELETE FROM render_hits WHERE key = ?", (key,))
            return deleted == 1

    def forget_dead(self, *, older_than: float, dry_run: bool = False) -> int:
        where = (
            "updated_at < ? AND (status = 'failed'"
            " OR (status = 'rendering' AND lease_until < ? AND attempts >= ?))"
        )
        params = (older_than, older_than, MAX_ATTEMPTS)
        with self.db.write() as conn:
            if dry_run:
                return int(
                    conn.execute(
                        f"SELECT COUNT(*) FROM render_records WHERE {where}", params
                    ).fetchone()[0]
                )
            return conn.execute(f"DELETE FROM render_records WHERE {where}", params).rowcount


class DynamoRetentionRecords(DynamoAdapter):
    def touch(self, keys: Sequence[str], at: float) -> None:
        for key in keys:
            try:
                self.table.update_item(
                    HIT_PREFIX + key,
                    UpdateExpression="SET last_hit_at = :at, #ttl = :expires",
                    ConditionExpression="attribute_not_exists(last_hit_at) OR last_hit_at < :at",
                    ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
                    ExpressionAttributeValues={
                        ":at": number(at),
                        ":expires": number(int(at + HIT_KEEP_SECONDS)),
                    },
                )
            except ConditionFailed:
                pass  # another process noted a later hit already

    def last_hits(self, keys: Sequence[str]) -> dict[str, float]:
        items = self.table.batch_get([HIT_PREFIX + key for key in keys])
        return {
            item_key.removeprefix(HIT_PREFIX): float(item["last_hit_at"]["N"])
            for item_key, item in items.items()
            if "last_hit_at" in item
        }

    def forget_render(self, key: str, *, updated_at: float) -> bool:
        try:
            self.table.call(
                "delete_item",
                TableName=self.table.name,
                Key={"key": {"S": key}},
                ConditionExpression="#status = :done AND updated_at = :updated_at",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":done": {"S": "done"},
                    ":updated_at": number(updated_at),
                },
            )
        except ConditionFailed:
            return False
        self.table.call(
            "delete_item", TableName=self.table.name, Key={"key": {"S": HIT_PREFIX + key}}
        )
        return True

    def forget_dead(self, *, older_than: float, dry_run: bool = False) -> int:
        return 0  # failed records expire by TTL (records.renders.FAILED_RECORD_TTL_SECONDS)


def open_retention_records(url: str, *, clock: Clock = time.time) -> RetentionRecords:
    """The RetentionRecords adapter ``url`` (LOOPMARK_RECORDS) names; connects on first use."""
    return open_adapter(
        url, sqlite=SqliteRetentionRecords, dynamodb=DynamoRetentionRecords, clock=clock
    )
