"""Records: what Loopmark remembers between requests, as ports with SQLite and DynamoDB adapters.

Today that is the render cache (:class:`RenderRecords`, with its rendering lease). Each record
type is a port in ``base`` and a class per backend; both backends are chosen by one URL
(``LOOPMARK_RECORDS``): ``sqlite:///path/to/loopmark.db`` or ``dynamodb://table-name``.
"""

from __future__ import annotations

import time

from loopmark.errors import ConfigInvalid, RecordsUnavailable
from loopmark.records.base import (
    LEASE_SECONDS,
    MAX_ATTEMPTS,
    MAX_LIST_LIMIT,
    Clock,
    RenderRecord,
    RenderRecords,
    RenderStatus,
    claimable,
    split_records_url,
)

__all__ = [
    "LEASE_SECONDS",
    "MAX_ATTEMPTS",
    "MAX_LIST_LIMIT",
    "Clock",
    "RecordsUnavailable",
    "RenderRecord",
    "RenderRecords",
    "RenderStatus",
    "claimable",
    "open_render_records",
]


def open_render_records(url: str, *, clock: Clock = time.time) -> RenderRecords:
    """The RenderRecords adapter ``url`` names. Opens nothing yet: connections are made on first
    use, and ``setup()`` creates the schema or table. Raises ConfigInvalid for an unknown URL.
    """
    scheme, _ = split_records_url(url)
    # Imported here so a SQLite deployment never loads boto3, and vice versa.
    if scheme == "sqlite":
        from loopmark.records.sqlite import open_sqlite_render_records

        return open_sqlite_render_records(url, clock=clock)
    if scheme == "dynamodb":
        from loopmark.records.dynamodb import open_dynamodb_render_records

        return open_dynamodb_render_records(url, clock=clock)
    raise ConfigInvalid(f"LOOPMARK_RECORDS scheme must be sqlite or dynamodb, got {url!r}")
