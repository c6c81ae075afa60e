"""Records: what Loopmark remembers between requests, as ports with SQLite and DynamoDB adapters.

Each record kind is in its own module, with its port (a Protocol), its SQLite adapter, its
DynamoDB adapter and its ``open_*_records``:

- ``renders``: the render cache and its rendering lease (claim, extend, complete, fail, block);
- ``gallery``: the curated gallery;
- ``words``: the brand's banned and allowed caption words;
- ``users``: the back-office's users;
- ``stats``: statistics (renders, cache hits, captions per day).

``sqlite`` and ``dynamodb`` hold the shared plumbing every kind's adapters stand on (the database
file with its schema and migrations, the table with its client and error translation), not any
kind's adapter; ``backend`` opens a kind's adapter for a URL, and ``common`` holds the clock type
and the URL's form. Both backends are chosen by one URL (``LOOPMARK_RECORDS``):
``sqlite:///path/to/loopmark.db`` (one database file) or ``dynamodb://table-name`` (one table,
items of each kind under their own key prefix). :func:`setup_all` creates what every kind needs.
"""

from __future__ import annotations

from loopmark.errors import RecordsUnavailable
from loopmark.records.common import Clock
from loopmark.records.gallery import GalleryEntry, GalleryRecords, open_gallery_records
from loopmark.records.renders import (
    LEASE_SECONDS,
    MAX_ATTEMPTS,
    MAX_LIST_LIMIT,
    RenderRecord,
    RenderRecords,
    RenderStatus,
    claimable,
    open_render_records,
)
from loopmark.records.stats import StatsRecords, open_stats_records
from loopmark.records.users import AdminUser, AdminUserRecords, open_user_records
from loopmark.records.words import WordListRecords, open_word_records

__all__ = [
    "LEASE_SECONDS",
    "MAX_ATTEMPTS",
    "MAX_LIST_LIMIT",
    "AdminUser",
    "AdminUserRecords",
    "Clock",
    "GalleryEntry",
    "GalleryRecords",
    "RecordsUnavailable",
    "RenderRecord",
    "RenderRecords",
    "RenderStatus",
    "StatsRecords",
    "WordListRecords",
    "claimable",
    "open_gallery_records",
    "open_render_records",
    "open_stats_records",
    "open_user_records",
    "open_word_records",
    "setup_all",
]


def setup_all(url: str) -> None:
    """Create the schema / table pieces of every record kind at ``url``. Idempotent.

    Statistics go first: on DynamoDB their setup creates the shared table together with every
    index at once, so the others only find it complete.
    """
    openers = (
        open_stats_records,
        open_render_records,
        open_gallery_records,
        open_word_records,
        open_user_records,
    )
    for opener in openers:
        records = opener(url)
        try:
            records.setup()
        finally:
            records.close()
