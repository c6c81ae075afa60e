"""Records: what Loopmark remembers between requests, as ports with SQLite and DynamoDB adapters.

The render cache (:class:`RenderRecords`, with its rendering lease; its port in ``base``), the
curated gallery (``gallery``), the brand's word lists (``words``), the back-office's users
(``users``) and statistics (``stats``): each a port with a class per backend, both backends
chosen by one URL (``LOOPMARK_RECORDS``): ``sqlite:///path/to/loopmark.db`` (one database file)
or ``dynamodb://table-name`` (one table, items of each type under their own key prefix).
:func:`setup_all` creates what every record type needs.
"""

from __future__ import annotations

import time

from loopmark.errors import RecordsUnavailable
from loopmark.records.backend import open_adapter
from loopmark.records.base import (
    LEASE_SECONDS,
    MAX_ATTEMPTS,
    MAX_LIST_LIMIT,
    Clock,
    RenderRecord,
    RenderRecords,
    RenderStatus,
    claimable,
)
from loopmark.records.dynamodb import DynamoRenderRecords
from loopmark.records.gallery import GalleryEntry, GalleryRecords, open_gallery_records
from loopmark.records.sqlite import SqliteRenderRecords
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


def open_render_records(url: str, *, clock: Clock = time.time) -> RenderRecords:
    """The RenderRecords adapter ``url`` names. Opens nothing yet: connections are made on first
    use, and ``setup()`` creates the schema or table. Raises ConfigInvalid for an unknown URL.
    """
    return open_adapter(url, sqlite=SqliteRenderRecords, dynamodb=DynamoRenderRecords, clock=clock)


def setup_all(url: str) -> None:
    """Create the schema / table pieces of every record type at ``url``. Idempotent.

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
