"""Statistics records: renders and cache hits per UTC day and template, and the captions used.

The render service counts every render and every cache hit (:meth:`StatsRecords.count`); the
admin reads renders per day, the cache hit rate and the most used captions. Counting is on the
request path, so it is one atomic increment per counter (never read-modify-write); reading is
for the back-office only. Captions are counted folded (case-folded, whitespace runs made one
space, cut to CAPTION_STAT_CHARS), so "Happy Friday" and "HAPPY FRIDAY" are one line.

SQLite: tables ``stats_events`` (day, event, template, count) and ``stats_captions`` (day,
caption, count), each count one UPSERT, both in one ``BEGIN IMMEDIATE`` transaction.

DynamoDB (the shared table, prefixed keys):

- ``stats#day#<day>``: one item per day, one number attribute per ``<event>#<template>``,
  incremented with UpdateItem ADD. Reading a window is one BatchGetItem per 100 days.
- ``stats#caption#<day>#<caption>``: one item per day and caption, ``caption_count`` incremented
  with ADD; ``caption_day`` puts it in the sparse index CAPTIONS_INDEX (partition: the day, sort:
  the count), so the top of a day is one Query, highest first. top_captions adds up each day's
  first CAPTIONS_READ_PER_DAY captions: exact unless a day had more distinct captions than that,
  and then only captions used less than that day's 1000th are left out of its sum. These items
  expire (TTL) CAPTION_STATS_KEEP_DAYS after their day.

Each day is one partition in DynamoDB, so counting is bounded by a partition's write rate
(about 1,000 counts per second per day item, the same for the index); far above this site's
render rate, but sustained cache hits beyond it would need the day items sharded.
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections import Counter
from datetime import date, timedelta
from typing import Any, Protocol

from loopmark.errors import BadInput
from loopmark.records.backend import open_adapter
from loopmark.records.common import Clock
from loopmark.records.dynamodb import TTL_ATTRIBUTE, DynamoAdapter, number
from loopmark.records.sqlite import SqliteAdapter

EVENTS = ("render", "cache_hit")
# Events whose caption is counted too (today every event; a later "share" might not be).
CAPTION_EVENTS = frozenset({"render", "cache_hit"})
CAPTION_STAT_CHARS = 80
MAX_TEMPLATE_ID_CHARS = 64
MAX_STATS_DAYS = 366  # renders_per_day, cache_hit_rate
MAX_CAPTION_DAYS = 90  # top_captions reads one Query per day
MAX_TOP_CAPTIONS = 100
DAY_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")

DAY_PREFIX = "stats#day#"
CAPTION_PREFIX = "stats#caption#"
CAPTIONS_INDEX = "captions"
CAPTIONS_INDEX_ATTRIBUTES = {"caption_day": "S", "caption_count": "N"}
CAPTIONS_INDEX_SPEC: dict[str, Any] = {
    "IndexName": CAPTIONS_INDEX,
    "KeySchema": [
        {"AttributeName": "caption_day", "KeyType": "HASH"},
        {"AttributeName": "caption_count", "KeyType": "RANGE"},
    ],
    # The caption is in the item's key, which every index carries.
    "Projection": {"ProjectionType": "KEYS_ONLY"},
}
CAPTIONS_READ_PER_DAY = 1000
CAPTION_STATS_KEEP_DAYS = MAX_CAPTION_DAYS + 30
SECONDS_PER_DAY = 86_400


class StatsRecords(Protocol):
    """Counters for the admin's statistics. Every method may raise RecordsUnavailable."""

    def setup(self) -> None: ...

    def count(
        self,
        *,
        template_id: str,
        event: str,
        caption: str | None = None,
        day: str | None = None,
        amount: int = 1,
    ) -> None:
        """Add ``amount`` ``event``s ("render" | "cache_hit") for ``template_id`` on ``day`` (UTC
        "YYYY-MM-DD", default today), and as many uses of ``caption`` when given. BadInput for
        an unknown event, a malformed day or template id, or an amount below 1."""
        ...

    def renders_per_day(self, *, days: int = 14) -> list[tuple[str, str, int]]:
        """(day, template_id, renders) for the last ``days`` days up to today, oldest first
        then by template; days and templates without renders are left out."""
        ...

    def cache_hit_rate(self, *, days: int = 14) -> float | None:
        """Cache hits / (hits + renders) over the last ``days`` days; None when there was none."""
        ...

    def top_captions(self, *, limit: int = 20, days: int = 30) -> list[tuple[str, int]]:
        """The most counted (folded) captions of the last ``days`` days, most first, ties by
        caption."""
        ...

    def close(self) -> None: ...


def fold_stat_caption(caption: str) -> str:
    """The form a caption is counted under: case-folded, one space per run, cut to length."""
    return " ".join(caption.casefold().split())[:CAPTION_STAT_CHARS]


def check_count(template_id: str, event: str, day: str | None, today: str, amount: int = 1) -> str:
    """The day to count on; BadInput for an unknown event, a bad template id or day, or an
    amount below one."""
    if amount < 1:
        raise BadInput("a count adds at least one")
    if event not in EVENTS:
        raise BadInput(f"a statistics event is one of {', '.join(EVENTS)}, not {event!r}")
    if (
        not isinstance(template_id, str)
        or not 1 <= len(template_id) <= MAX_TEMPLATE_ID_CHARS
        or not template_id.isprintable()
    ):
        raise BadInput(f"not a template id: {template_id!r}")
    if day is None:
        return today
    if not isinstance(day, str) or not DAY_PATTERN.fullmatch(day):
        raise BadInput(f"a day is written YYYY-MM-DD, not {day!r}")
    try:
        date.fromisoformat(day)
    except ValueError:
        raise BadInput(f"not a calendar day: {day!r}") from None
    return day


def check_window(days: int, maximum: int) -> None:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= maximum:
        raise BadInput(f"a statistics window is 1 to {maximum} days")


def check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_TOP_CAPTIONS:
        raise BadInput(f"ask for 1 to {MAX_TOP_CAPTIONS} captions")


def utc_day(epoch_seconds: float) -> str:
    """The UTC day of a time, as YYYY-MM-DD."""
    return _day_text(math.floor(epoch_seconds / SECONDS_PER_DAY))


@functools.lru_cache(maxsize=8)  # asked for on every cache hit (its statistics), today's mostly
def _day_text(day_number: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=day_number)).isoformat()


def day_start(day: str) -> int:
    """Epoch seconds of a UTC day's midnight."""
    return (date.fromisoformat(day) - date(1970, 1, 1)).days * SECONDS_PER_DAY


def window(today: str, days: int) -> list[str]:
    """The ``days`` UTC days ending with ``today``, oldest first."""
    last = date.fromisoformat(today)
    return [(last - timedelta(days=back)).isoformat() for back in range(days - 1, -1, -1)]


def recent_days(clock: Clock, days: int, maximum: int) -> list[str]:
    """The window a statistic reads: the ``days`` UTC days ending today, oldest first, after
    :func:`check_window` (BadInput beyond ``maximum``)."""
    check_window(days, maximum)
    return window(utc_day(clock()), days)


def hit_rate(hits: int, renders: int) -> float | None:
    total = hits + renders
    return None if total == 0 else hits / total


class Counting:
    """``count`` as both adapters have it: the rules (:func:`check_count`, which events count
    their caption and in what form) stated once; each adapter's ``_add`` stores the counts."""

    _clock: Clock

    def count(
        self,
        *,
        template_id: str,
        event: str,
        caption: str | None = None,
        day: str | None = None,
        amount: int = 1,
    ) -> None:
        day = check_count(template_id, event, day, utc_day(self._clock()), amount)
        folded = fold_stat_caption(caption) if caption and event in CAPTION_EVENTS else ""
        self._add(day, event, template_id, folded, amount)

    def _add(self, day: str, event: str, template_id: str, folded: str, amount: int) -> None:
        """Add ``amount`` to the day's ``event`` counter for ``template_id``, and to the day's
        ``folded`` caption unless it is empty, in the backend."""
        raise NotImplementedError


# --- SQLite ---------------------------------------------------------------------------------------


class SqliteStatsRecords(Counting, SqliteAdapter):
    """StatsRecords in the ``stats_events`` and ``stats_captions`` tables of a SqliteDatabase."""

    def _add(self, day: str, event: str, template_id: str, folded: str, amount: int) -> None:
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO stats_events (day, event, template_id, count) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (day, event, template_id)"
                " DO UPDATE SET count = count + excluded.count",
                (day, event, template_id, amount),
            )
            if folded:
                conn.execute(
                    "INSERT INTO stats_captions (day, caption, count) VALUES (?, ?, ?)"
                    " ON CONFLICT (day, caption) DO UPDATE SET count = count + excluded.count",
                    (day, folded, amount),
                )

    def renders_per_day(self, *, days: int = 14) -> list[tuple[str, str, int]]:
        span = recent_days(self._clock, days, MAX_STATS_DAYS)
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT day, template_id, count FROM stats_events"
                " WHERE event = 'render' AND day BETWEEN ? AND ? AND count > 0"
                " ORDER BY day, template_id",
                (span[0], span[-1]),
            ).fetchall()
        return [(day, template_id, int(count)) for day, template_id, count in rows]

    def cache_hit_rate(self, *, days: int = 14) -> float | None:
        span = recent_days(self._clock, days, MAX_STATS_DAYS)
        with self.db.connection() as conn:
            totals = dict(
                conn.execute(
                    "SELECT event, SUM(count) FROM stats_events"
                    " WHERE day BETWEEN ? AND ? GROUP BY event",
                    (span[0], span[-1]),
                ).fetchall()
            )
        return hit_rate(int(totals.get("cache_hit") or 0), int(totals.get("render") or 0))

    def top_captions(self, *, limit: int = 20, days: int = 30) -> list[tuple[str, int]]:
        check_limit(limit)
        span = recent_days(self._clock, days, MAX_CAPTION_DAYS)
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT caption, SUM(count) AS total FROM stats_captions"
                " WHERE day BETWEEN ? AND ? GROUP BY caption"
                " ORDER BY total DESC, caption LIMIT ?",
                (span[0], span[-1], limit),
            ).fetchall()
        return [(caption, int(total)) for caption, total in rows]


# --- DynamoDB -------------------------------------------------------------------------------------


class DynamoStatsRecords(Counting, DynamoAdapter):
    """StatsRecords as day items and caption items of a DynamoTable (see the module doc)."""

    def setup(self) -> None:
        self.table.setup(indexes=(CAPTIONS_INDEX_SPEC,), attributes=CAPTIONS_INDEX_ATTRIBUTES)

    def _add(self, day: str, event: str, template_id: str, folded: str, amount: int) -> None:
        self.table.update_item(
            DAY_PREFIX + day,
            UpdateExpression="ADD #counter :one",
            ExpressionAttributeNames={"#counter": f"{event}#{template_id}"},
            ExpressionAttributeValues={":one": number(amount)},
        )
        if folded:
            expires_at = day_start(day) + CAPTION_STATS_KEEP_DAYS * SECONDS_PER_DAY
            self.table.update_item(
                f"{CAPTION_PREFIX}{day}#{folded}",
                UpdateExpression="ADD caption_count :one SET caption_day = :day, #ttl = :expires",
                ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":one": number(amount),
                    ":day": {"S": day},
                    ":expires": number(expires_at),
                },
            )

    def renders_per_day(self, *, days: int = 14) -> list[tuple[str, str, int]]:
        rows = []
        for day, counters in self._days(recent_days(self._clock, days, MAX_STATS_DAYS)):
            for template_id, renders in sorted(counters.get("render", {}).items()):
                if renders > 0:
                    rows.append((day, template_id, renders))
        return rows

    def cache_hit_rate(self, *, days: int = 14) -> float | None:
        totals: Counter[str] = Counter()
        for _, counters in self._days(recent_days(self._clock, days, MAX_STATS_DAYS)):
            for event, per_template in counters.items():
                totals[event] += sum(per_template.values())
        return hit_rate(totals["cache_hit"], totals["render"])

    def top_captions(self, *, limit: int = 20, days: int = 30) -> list[tuple[str, int]]:
        check_limit(limit)
        totals: Counter[str] = Counter()
        for day in recent_days(self._clock, days, MAX_CAPTION_DAYS):
            prefix = f"{CAPTION_PREFIX}{day}#"
            response = self.table.call(
                "query",
                TableName=self.table.name,
                IndexName=CAPTIONS_INDEX,
                KeyConditionExpression="caption_day = :day",
                ExpressionAttributeValues={":day": {"S": day}},
                ScanIndexForward=False,  # most counted first
                Limit=CAPTIONS_READ_PER_DAY,
            )
            for item in response.get("Items", []):
                totals[item["key"]["S"].removeprefix(prefix)] += int(item["caption_count"]["N"])
        ranked = sorted(totals.items(), key=lambda pair: (-pair[1], pair[0]))
        return ranked[:limit]

    def _days(self, span: list[str]) -> list[tuple[str, dict[str, dict[str, int]]]]:
        """Each day of ``span``, in its order, with its counters as {event: {template: n}}."""
        items = self.table.batch_get([DAY_PREFIX + day for day in span])
        result = []
        for day in span:
            counters: dict[str, dict[str, int]] = {}
            for attribute, value in items.get(DAY_PREFIX + day, {}).items():
                event, sep, template_id = attribute.partition("#")
                if sep and event in EVENTS and "N" in value:
                    counters.setdefault(event, {})[template_id] = int(value["N"])
            result.append((day, counters))
        return result


def open_stats_records(url: str, *, clock: Clock = time.time) -> StatsRecords:
    """The StatsRecords adapter ``url`` (LOOPMARK_RECORDS) names; connects on first use."""
    return open_adapter(url, sqlite=SqliteStatsRecords, dynamodb=DynamoStatsRecords, clock=clock)
