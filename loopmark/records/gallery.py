"""Gallery records: the admin's curated, ordered list of done renders, on SQLite and DynamoDB.

An entry copies what the public gallery shows from its render (template, caption, the media's
width and height) so listing the gallery never reads render records. Positions are always
0..n-1 in the curated order. Every change bumps :meth:`GalleryRecords.version`, which other
processes read (one SELECT / one GetItem) to know when their in-memory copy is stale.

SQLite: table ``gallery_entries``; each change is one ``BEGIN IMMEDIATE`` transaction that also
bumps the ``gallery`` row of ``record_counters``.

DynamoDB (the shared table, prefixed keys): the item ``gallery#order`` holds the curated order
(render keys as a JSON list, ≤ MAX_GALLERY_ENTRIES) and the version; each entry is an item
``gallery#entry#<render key>``. Every change is optimistic: read the order, then write it back
conditioned on the version read — together with the entry's Put or Delete in one transaction —
and start again if another writer got there first. Listing is one GetItem plus a BatchGetItem
per 100 entries.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Protocol

from loopmark.errors import BadInput
from loopmark.records.backend import open_adapter
from loopmark.records.common import Clock
from loopmark.records.dynamodb import DynamoAdapter, number, read_version
from loopmark.records.renders import RenderRecord, RenderStatus
from loopmark.records.sqlite import SqliteAdapter, bump_counter, read_counter

# The gallery is curated by hand; the bound keeps the DynamoDB order item far below 400 KB.
MAX_GALLERY_ENTRIES = 500
COUNTER = "gallery"

ORDER_KEY = "gallery#order"
ENTRY_PREFIX = "gallery#entry#"


@dataclass(frozen=True)
class GalleryEntry:
    """One curated render, as the public gallery shows it."""

    key: str  # the render's content key
    template_id: str
    caption: str
    position: int  # 0-based, in the curated order
    added_at: float  # epoch seconds
    width: int  # copied from the render's media when added
    height: int


class GalleryRecords(Protocol):
    """The curated gallery. Every method may raise RecordsUnavailable."""

    def setup(self) -> None:
        """Create the schema / table pieces. Idempotent."""
        ...

    def entries(self) -> list[GalleryEntry]:
        """All entries in the curated order (position 0 first)."""
        ...

    def add(self, record: RenderRecord) -> GalleryEntry:
        """Append a done render last; an entry already there is returned unchanged.

        BadInput for a render that is not done (or whose media lack a size), or a full gallery.
        """
        ...

    def remove(self, key: str) -> bool:
        """Take an entry out (later ones move up); False when it was not in the gallery."""
        ...

    def reorder(self, keys: list[str]) -> None:
        """Set the whole order. BadInput unless ``keys`` is exactly the current set, once each."""
        ...

    def version(self) -> int:
        """A counter bumped by every change (0 before the first); reads never bump it."""
        ...

    def close(self) -> None: ...


def entry_size(record: RenderRecord) -> tuple[int, int]:
    """The (width, height) a render contributes to its entry; BadInput unless it can be shown."""
    if record.status != RenderStatus.DONE:
        raise BadInput(f"only a done render can join the gallery ({record.key} is {record.status})")
    media = record.media or {}
    width, height = media.get("width", 0), media.get("height", 0)
    for value in (width, height):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BadInput(f"render {record.key} has no media size")
    return int(width), int(height)


def check_new_order(current: list[str], keys: list[str]) -> None:
    """BadInput unless ``keys`` is a permutation of ``current``."""
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise BadInput("the gallery order must be a list of render keys")
    if len(keys) != len(set(keys)):
        raise BadInput("the gallery order names a render twice")
    if set(keys) != set(current):
        missing, extra = set(current) - set(keys), set(keys) - set(current)
        raise BadInput(
            f"the gallery order must name exactly the current entries "
            f"({len(missing)} missing, {len(extra)} unknown): reload and try again"
        )


def _check_room(count: int) -> None:
    if count >= MAX_GALLERY_ENTRIES:
        raise BadInput(f"the gallery is full ({MAX_GALLERY_ENTRIES} entries): remove one first")


# --- SQLite ---------------------------------------------------------------------------------------

_COLUMNS = "key, template_id, caption, position, added_at, width, height"


def _sqlite_entry(row: tuple[Any, ...]) -> GalleryEntry:
    key, template_id, caption, position, added_at, width, height = row
    return GalleryEntry(
        key=key,
        template_id=template_id,
        caption=caption,
        position=int(position),
        added_at=float(added_at),
        width=int(width),
        height=int(height),
    )


class SqliteGalleryRecords(SqliteAdapter):
    """GalleryRecords in the ``gallery_entries`` table of a SqliteDatabase."""

    def entries(self) -> list[GalleryEntry]:
        with self.db.connection() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM gallery_entries ORDER BY position"
            ).fetchall()
        return [_sqlite_entry(row) for row in rows]

    def add(self, record: RenderRecord) -> GalleryEntry:
        width, height = entry_size(record)
        with self.db.write() as conn:
            existing = self._select(conn, record.key)
            if existing is not None:
                return existing
            # Positions are 0..n-1, so the count is the next position.
            count = int(conn.execute("SELECT COUNT(*) FROM gallery_entries").fetchone()[0])
            _check_room(count)
            entry = GalleryEntry(
                key=record.key,
                template_id=record.template_id,
                caption=record.caption,
                position=count,
                added_at=self._clock(),
                width=width,
                height=height,
            )
            conn.execute(
                f"INSERT INTO gallery_entries ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.key,
                    entry.template_id,
                    entry.caption,
                    entry.position,
                    entry.added_at,
                    entry.width,
                    entry.height,
                ),
            )
            bump_counter(conn, COUNTER)
            return entry

    def remove(self, key: str) -> bool:
        with self.db.write() as conn:
            row = conn.execute(
                "DELETE FROM gallery_entries WHERE key = ? RETURNING position", (key,)
            ).fetchone()
            if row is None:
                return False
            conn.execute(
                "UPDATE gallery_entries SET position = position - 1 WHERE position > ?", (row[0],)
            )
            bump_counter(conn, COUNTER)
            return True

    def reorder(self, keys: list[str]) -> None:
        with self.db.write() as conn:
            current = [
                row[0] for row in conn.execute("SELECT key FROM gallery_entries ORDER BY position")
            ]
            check_new_order(current, keys)
            if keys == current:
                return  # nothing changes, so the version does not either
            conn.executemany(
                "UPDATE gallery_entries SET position = ? WHERE key = ?",
                [(position, key) for position, key in enumerate(keys)],
            )
            bump_counter(conn, COUNTER)

    def version(self) -> int:
        with self.db.connection() as conn:
            return read_counter(conn, COUNTER)

    @staticmethod
    def _select(conn: sqlite3.Connection, key: str) -> GalleryEntry | None:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM gallery_entries WHERE key = ?", (key,)
        ).fetchone()
        return None if row is None else _sqlite_entry(row)


# --- DynamoDB -------------------------------------------------------------------------------------


def _dynamo_entry(item: dict[str, Any], position: int) -> GalleryEntry:
    return GalleryEntry(
        key=item["key"]["S"][len(ENTRY_PREFIX) :],
        template_id=item["template_id"]["S"],
        caption=item["caption"]["S"],
        position=position,
        added_at=float(item["added_at"]["N"]),
        width=int(item["width"]["N"]),
        height=int(item["height"]["N"]),
    )


class DynamoGalleryRecords(DynamoAdapter):
    """GalleryRecords as an order item and entry items of a DynamoTable (see the module doc)."""

    def entries(self) -> list[GalleryEntry]:
        keys, _ = self._order()
        items = self.table.batch_get([ENTRY_PREFIX + key for key in keys])
        # An entry removed between the two reads is simply not listed.
        present = [items[ENTRY_PREFIX + key] for key in keys if ENTRY_PREFIX + key in items]
        return [_dynamo_entry(item, position) for position, item in enumerate(present)]

    def add(self, record: RenderRecord) -> GalleryEntry:
        width, height = entry_size(record)

        def attempt() -> GalleryEntry:
            keys, version = self._order()
            if record.key in keys:
                existing = self._get_entry(record.key, keys.index(record.key))
                if existing is not None:
                    return existing
                # Listed without its item (written outside this class): rewrite it in place.
                order = keys
            else:
                _check_room(len(keys))
                order = [*keys, record.key]
            entry = GalleryEntry(
                key=record.key,
                template_id=record.template_id,
                caption=record.caption,
                position=order.index(record.key),
                added_at=self._clock(),
                width=width,
                height=height,
            )
            put = {
                "Put": {
                    "TableName": self.table.name,
                    "Item": {
                        "key": {"S": ENTRY_PREFIX + entry.key},
                        "template_id": {"S": entry.template_id},
                        "caption": {"S": entry.caption},
                        "added_at": number(entry.added_at),
                        "width": number(entry.width),
                        "height": number(entry.height),
                    },
                }
            }
            self._write_order(order, version, also=put)
            return entry

        return self.table.retry_lost_races(attempt, what="the gallery")

    def remove(self, key: str) -> bool:
        def attempt() -> bool:
            keys, version = self._order()
            if key not in keys:
                return False
            delete = {
                "Delete": {"TableName": self.table.name, "Key": {"key": {"S": ENTRY_PREFIX + key}}}
            }
            self._write_order([k for k in keys if k != key], version, also=delete)
            return True

        return self.table.retry_lost_races(attempt, what="the gallery")

    def reorder(self, keys: list[str]) -> None:
        def attempt() -> None:
            current, version = self._order()
            check_new_order(current, keys)
            if keys != current:
                self._write_order(list(keys), version)

        self.table.retry_lost_races(attempt, what="the gallery")

    def version(self) -> int:
        return read_version(self.table, ORDER_KEY)

    def _order(self) -> tuple[list[str], int]:
        """The curated keys and the version they belong to (strongly consistent)."""
        item = self.table.get_item(ORDER_KEY) or {}
        if "version" not in item:
            return [], 0
        keys = json.loads(item["keys"]["S"]) if "keys" in item else []
        return keys, int(item["version"]["N"])

    def _get_entry(self, key: str, position: int) -> GalleryEntry | None:
        item = self.table.get_item(ENTRY_PREFIX + key)
        return None if item is None else _dynamo_entry(item, position)

    def _write_order(
        self, keys: list[str], version: int, *, also: dict[str, Any] | None = None
    ) -> None:
        """Store ``keys`` as version + 1, only if the order is still at ``version`` (else
        ConditionFailed); ``also`` (an entry's Put or Delete) is applied in the same transaction."""
        condition = "attribute_not_exists(#version)" if version == 0 else "#version = :version"
        values: dict[str, Any] = {
            # JSON text, like render media: read whole, never queried, and a list attribute of
            # 500 strings costs far more to (de)serialise.
            ":keys": {"S": json.dumps(keys, separators=(",", ":"))},
            ":next": number(version + 1),
        }
        if version:
            values[":version"] = number(version)
        update: dict[str, Any] = {
            "TableName": self.table.name,
            "Key": {"key": {"S": ORDER_KEY}},
            "UpdateExpression": "SET #keys = :keys, #version = :next",
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#keys": "keys", "#version": "version"},
            "ExpressionAttributeValues": values,
        }
        if also is None:
            self.table.call("update_item", **update)
        else:
            self.table.call("transact_write_items", TransactItems=[{"Update": update}, also])


def open_gallery_records(url: str, *, clock: Clock = time.time) -> GalleryRecords:
    """The GalleryRecords adapter ``url`` (LOOPMARK_RECORDS) names; connects on first use."""
    return open_adapter(
        url, sqlite=SqliteGalleryRecords, dynamodb=DynamoGalleryRecords, clock=clock
    )
