"""Opening a record kind's adapter over the backend a records URL (LOOPMARK_RECORDS) names.

Every record kind has one class per backend, built the same way — over a
:class:`~loopmark.records.sqlite.SqliteDatabase` or a
:class:`~loopmark.records.dynamodb.DynamoTable`, with a clock — so each ``open_*_records`` is one
call of :func:`open_adapter` naming its two classes. The result is typed as either class, so
the opener's declared port checks that both adapters implement it.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from loopmark.errors import ConfigInvalid
from loopmark.records.common import Clock, split_records_url
from loopmark.records.dynamodb import DynamoTable, dynamodb_table_from_url
from loopmark.records.sqlite import SqliteDatabase, sqlite_path_from_url

S_co = TypeVar("S_co", covariant=True)
D_co = TypeVar("D_co", covariant=True)


class SqliteAdapterClass(Protocol[S_co]):
    """A record kind's SQLite class (a :class:`~loopmark.records.sqlite.SqliteAdapter`)."""

    def __call__(self, db: SqliteDatabase, /, *, clock: Clock) -> S_co: ...


class DynamoAdapterClass(Protocol[D_co]):
    """A record kind's DynamoDB class (a :class:`~loopmark.records.dynamodb.DynamoAdapter`)."""

    def __call__(self, table: DynamoTable, /, *, clock: Clock) -> D_co: ...


def open_adapter(
    url: str,
    *,
    sqlite: SqliteAdapterClass[S_co],
    dynamodb: DynamoAdapterClass[D_co],
    clock: Clock,
) -> S_co | D_co:
    """The adapter of the backend ``url`` names: ``sqlite`` over the database file, or
    ``dynamodb`` over the table. Opens nothing yet: connections are made on first use, and the
    adapter's ``setup()`` creates the schema or table. Raises ConfigInvalid for an unknown URL.
    """
    scheme, _ = split_records_url(url)
    if scheme == "sqlite":
        return sqlite(SqliteDatabase(sqlite_path_from_url(url)), clock=clock)
    if scheme == "dynamodb":
        return dynamodb(DynamoTable(dynamodb_table_from_url(url)), clock=clock)
    raise ConfigInvalid(f"LOOPMARK_RECORDS scheme must be sqlite or dynamodb, got {url!r}")
