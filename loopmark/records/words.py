"""Word-list records: the brand's own banned and allowed caption words, on SQLite and DynamoDB.

The caption policy reads them as a :class:`~loopmark.renderer.caption_policy.WordLists`. Words
are stored normalised (:func:`normalize_word`), so "Straße", "STRASSE" and "strasse" are one entry.
Every change bumps :meth:`WordListRecords.version`; processes that keep the lists in memory read
the version first (one SELECT / one GetItem) and the lists again only when it moved.

SQLite: table ``caption_words``; each change is one ``BEGIN IMMEDIATE`` transaction that also
bumps the ``words`` row of ``record_counters``.

DynamoDB (the shared table, prefixed keys): a list is spread over WORD_SHARDS items
``words#<kind>#<n>`` (a string set each, the word's hash picks the item), so a full list of
MAX_LIST_WORDS long words stays far below DynamoDB's 400 KB per item. The item ``words#meta``
holds the version and each list's size. A change is one transaction over the word's item and the
meta item (conditioned on the word being absent / present, and on the size bound); reading the
lists is one TransactGetItems, so a reader never sees half of an import.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
import unicodedata
from collections.abc import Iterable
from typing import Any, Protocol

from loopmark.errors import BadInput
from loopmark.records.backend import open_adapter
from loopmark.records.common import Clock
from loopmark.records.dynamodb import ConditionFailed, DynamoAdapter, number, read_version
from loopmark.records.sqlite import SqliteAdapter, bump_counter, read_counter
from loopmark.renderer.caption_policy import WordLists

WORD_KINDS = ("banned", "allowed")
MAX_WORD_CHARS = 40
MAX_LIST_WORDS = 5000
# A raw entry longer than this is refused before normalising (NFKC can only shrink it so far).
MAX_RAW_WORD_CHARS = 200
COUNTER = "words"
# Unicode categories a word may not contain: controls, format characters (bidi overrides,
# zero-width joiners) and unassigned/private/surrogate code points.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cn", "Co", "Cs"})

# DynamoDB: items per list. Fixed for ever: a word's item is its hash modulo this number.
WORD_SHARDS = 8
META_KEY = "words#meta"


class WordListRecords(Protocol):
    """The brand's word lists. Every method may raise RecordsUnavailable."""

    def setup(self) -> None: ...

    def lists(self) -> WordLists:
        """Both lists, as the caption policy takes them."""
        ...

    def add(self, kind: str, word: str) -> None:
        """Add a normalised word to list ``kind`` ("banned" | "allowed"); present: no change.

        BadInput for an unknown kind, a word that is empty or too long once normalised, or a list
        already holding MAX_LIST_WORDS words.
        """
        ...

    def remove(self, kind: str, word: str) -> bool:
        """Remove the word (normalised first); False when it was not in the list."""
        ...

    def replace(self, kind: str, words: Iterable[str]) -> int:
        """Make the list exactly ``words`` (an imported file): normalised, duplicates and blank
        entries dropped, at most MAX_LIST_WORDS. All or nothing: one bad word (BadInput, naming
        it) changes nothing. Returns how many words the list now holds."""
        ...

    def version(self) -> int:
        """A counter bumped by every change (0 before the first); reads never bump it."""
        ...

    def close(self) -> None: ...


def check_kind(kind: str) -> str:
    if kind not in WORD_KINDS:
        raise BadInput(f"a word list is {' or '.join(WORD_KINDS)}, not {kind!r}")
    return kind


def normalize_word(word: str) -> str:
    """NFKC, case-folded, inner whitespace runs made one space, ends stripped; 1 to
    MAX_WORD_CHARS characters without control or format characters (BadInput otherwise)."""
    if not isinstance(word, str):
        raise BadInput("a word must be text")
    if len(word) > MAX_RAW_WORD_CHARS:
        raise BadInput(f"a word has at most {MAX_WORD_CHARS} characters")
    # Case folding can leave text that is no longer NFKC ("ǰ"), so normalise on both sides.
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", word).casefold())
    text = " ".join(text.split())
    if not text:
        raise BadInput("a word cannot be empty")
    if len(text) > MAX_WORD_CHARS:
        raise BadInput(f"a word has at most {MAX_WORD_CHARS} characters: {text[:20]!r}…")
    if any(unicodedata.category(char) in _REFUSED_CATEGORIES for char in text):
        raise BadInput(f"a word cannot contain control or invisible characters: {text!r}")
    return text


def normalize_list(words: Iterable[str]) -> set[str]:
    """An imported list, normalised and de-duplicated; blank entries (empty lines) skipped."""
    if isinstance(words, str):
        raise BadInput("a word list is a sequence of words, not one text")
    result: set[str] = set()
    for number_, word in enumerate(words, start=1):
        if isinstance(word, str) and not word.strip():
            continue
        try:
            result.add(normalize_word(word))
        except BadInput as exc:
            raise BadInput(f"word {number_}: {exc.reason}") from None
        if len(result) > MAX_LIST_WORDS:
            raise BadInput(f"a word list holds at most {MAX_LIST_WORDS} words")
    return result


def _list_full(kind: str) -> BadInput:
    return BadInput(f"the {kind} list is full ({MAX_LIST_WORDS} words)")


# --- SQLite ---------------------------------------------------------------------------------------


class SqliteWordListRecords(SqliteAdapter):
    """WordListRecords in the ``caption_words`` table of a SqliteDatabase."""

    def lists(self) -> WordLists:
        found: dict[str, set[str]] = {kind: set() for kind in WORD_KINDS}
        with self.db.connection() as conn:
            for kind, word in conn.execute("SELECT kind, word FROM caption_words"):
                found[kind].add(word)
        return WordLists(banned=frozenset(found["banned"]), allowed=frozenset(found["allowed"]))

    def add(self, kind: str, word: str) -> None:
        check_kind(kind)
        word = normalize_word(word)
        with self.db.write() as conn:
            present = conn.execute(
                "SELECT 1 FROM caption_words WHERE kind = ? AND word = ?", (kind, word)
            ).fetchone()
            if present:
                return
            if self._size(conn, kind) >= MAX_LIST_WORDS:
                raise _list_full(kind)
            conn.execute("INSERT INTO caption_words (kind, word) VALUES (?, ?)", (kind, word))
            bump_counter(conn, COUNTER)

    def remove(self, kind: str, word: str) -> bool:
        check_kind(kind)
        word = normalize_word(word)
        with self.db.write() as conn:
            cursor = conn.execute(
                "DELETE FROM caption_words WHERE kind = ? AND word = ?", (kind, word)
            )
            if cursor.rowcount != 1:
                return False
            bump_counter(conn, COUNTER)
            return True

    def replace(self, kind: str, words: Iterable[str]) -> int:
        check_kind(kind)
        wanted = normalize_list(words)
        with self.db.write() as conn:
            current = {
                row[0]
                for row in conn.execute("SELECT word FROM caption_words WHERE kind = ?", (kind,))
            }
            if current == wanted:
                return len(wanted)
            conn.execute("DELETE FROM caption_words WHERE kind = ?", (kind,))
            conn.executemany(
                "INSERT INTO caption_words (kind, word) VALUES (?, ?)",
                [(kind, word) for word in sorted(wanted)],
            )
            bump_counter(conn, COUNTER)
        return len(wanted)

    def version(self) -> int:
        with self.db.connection() as conn:
            return read_counter(conn, COUNTER)

    @staticmethod
    def _size(conn: sqlite3.Connection, kind: str) -> int:
        row = conn.execute("SELECT COUNT(*) FROM caption_words WHERE kind = ?", (kind,)).fetchone()
        return int(row[0])


# --- DynamoDB -------------------------------------------------------------------------------------


def shard_of(word: str) -> int:
    """The item (0..WORD_SHARDS-1) a normalised word lives in: stable across processes."""
    return int.from_bytes(hashlib.sha256(word.encode("utf-8")).digest()[:4], "big") % WORD_SHARDS


def _shard_name(kind: str, shard: int) -> str:
    return f"words#{kind}#{shard}"


def _shard_key(kind: str, shard: int) -> dict[str, Any]:
    return {"key": {"S": _shard_name(kind, shard)}}


class DynamoWordListRecords(DynamoAdapter):
    """WordListRecords as sharded string sets of a DynamoTable (see the module doc)."""

    def lists(self) -> WordLists:
        found = {kind: self._read_kind(kind) for kind in WORD_KINDS}
        return WordLists(banned=frozenset(found["banned"]), allowed=frozenset(found["allowed"]))

    def add(self, kind: str, word: str) -> None:
        check_kind(kind)
        word = normalize_word(word)
        shard_update = self._shard_update(
            kind,
            word,
            "ADD #words :words",
            condition="attribute_not_exists(#words) OR NOT contains(#words, :word)",
        )
        meta_update = self._meta_update(
            "ADD #version :one, #size :one",
            kind,
            {":one": number(1), ":max": number(MAX_LIST_WORDS)},
            condition="attribute_not_exists(#size) OR #size < :max",
        )

        def attempt() -> None:
            try:
                self._transact(shard_update, meta_update)
            except ConditionFailed:
                # Which condition failed: the word is there (done), the list is full, or another
                # writer's transaction collided with ours (try again).
                if word in self._read_shard(kind, shard_of(word)):
                    return
                if self._sizes().get(kind, 0) >= MAX_LIST_WORDS:
                    raise _list_full(kind) from None
                raise

        self.table.retry_lost_races(attempt, what="the word lists")

    def remove(self, kind: str, word: str) -> bool:
        check_kind(kind)
        word = normalize_word(word)
        shard_update = self._shard_update(
            kind, word, "DELETE #words :words", condition="contains(#words, :word)"
        )
        meta_update = self._meta_update(
            "ADD #version :one, #size :minus_one",
            kind,
            {":one": number(1), ":minus_one": number(-1)},
        )

        def attempt() -> bool:
            try:
                self._transact(shard_update, meta_update)
            except ConditionFailed:
                if word not in self._read_shard(kind, shard_of(word)):
                    return False
                raise
            return True

        return self.table.retry_lost_races(attempt, what="the word lists")

    def replace(self, kind: str, words: Iterable[str]) -> int:
        check_kind(kind)
        wanted = normalize_list(words)
        shards: list[set[str]] = [set() for _ in range(WORD_SHARDS)]
        for word in wanted:
            shards[shard_of(word)].add(word)
        updates: list[dict[str, Any]] = []
        for shard, shard_words in enumerate(shards):
            update: dict[str, Any] = {
                "TableName": self.table.name,
                "Key": _shard_key(kind, shard),
                "ExpressionAttributeNames": {"#words": "words"},
            }
            if shard_words:
                update["UpdateExpression"] = "SET #words = :words"
                update["ExpressionAttributeValues"] = {":words": {"SS": sorted(shard_words)}}
            else:
                update["UpdateExpression"] = "REMOVE #words"  # a set cannot be empty
            updates.append(update)
        meta_update = self._meta_update(
            "ADD #version :one SET #size = :size",
            kind,
            {":one": number(1), ":size": number(len(wanted))},
        )

        def attempt() -> int:
            if self._read_kind(kind) != wanted:
                self._transact(*updates, meta_update)
            return len(wanted)

        return self.table.retry_lost_races(attempt, what="the word lists")

    def version(self) -> int:
        return read_version(self.table, META_KEY)

    def _shard_update(
        self, kind: str, word: str, expression: str, *, condition: str
    ) -> dict[str, Any]:
        """A transaction's conditional change of the one string set that holds ``word``."""
        return {
            "TableName": self.table.name,
            "Key": _shard_key(kind, shard_of(word)),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#words": "words"},
            "ExpressionAttributeValues": {":words": {"SS": [word]}, ":word": {"S": word}},
        }

    def _meta_update(
        self, expression: str, kind: str, values: dict[str, Any], *, condition: str | None = None
    ) -> dict[str, Any]:
        update: dict[str, Any] = {
            "TableName": self.table.name,
            "Key": {"key": {"S": META_KEY}},
            "UpdateExpression": expression,
            "ExpressionAttributeNames": {"#version": "version", "#size": f"size_{kind}"},
            "ExpressionAttributeValues": values,
        }
        if condition is not None:
            update["ConditionExpression"] = condition
        return update

    def _transact(self, *updates: dict[str, Any]) -> None:
        self.table.call("transact_write_items", TransactItems=[{"Update": u} for u in updates])

    def _read_kind(self, kind: str) -> set[str]:
        """Every shard of one list in one TransactGetItems: a consistent snapshot."""
        response = self.table.retry_lost_races(
            lambda: self.table.call(
                "transact_get_items",
                TransactItems=[
                    {"Get": {"TableName": self.table.name, "Key": _shard_key(kind, shard)}}
                    for shard in range(WORD_SHARDS)
                ],
            ),
            what="the word lists",
        )
        words: set[str] = set()
        for answer in response.get("Responses", []):
            words.update(answer.get("Item", {}).get("words", {}).get("SS", []))
        return words

    def _read_shard(self, kind: str, shard: int) -> set[str]:
        item = self.table.get_item(_shard_name(kind, shard)) or {}
        return set(item.get("words", {}).get("SS", []))

    def _sizes(self) -> dict[str, int]:
        item = self.table.get_item(META_KEY) or {}
        return {
            kind: int(item[f"size_{kind}"]["N"]) for kind in WORD_KINDS if f"size_{kind}" in item
        }


def open_word_records(url: str, *, clock: Clock = time.time) -> WordListRecords:
    """The WordListRecords adapter ``url`` (LOOPMARK_RECORDS) names; connects on first use."""
    return open_adapter(
        url, sqlite=SqliteWordListRecords, dynamodb=DynamoWordListRecords, clock=clock
    )
