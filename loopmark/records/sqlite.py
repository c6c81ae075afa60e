"""SQLite plumbing: the database file every record kind shares.

:class:`SqliteDatabase` owns the file: a small pool of connections (each used by one thread at a
time), WAL, the busy timeout, write transactions (``BEGIN IMMEDIATE``) and the schema's version
(``PRAGMA user_version``). Each record kind's SQLite adapter (in the kind's own module: renders,
gallery, words, users, stats) is a :class:`SqliteAdapter` over a SqliteDatabase; its tables arrive
as one more entry at the end of MIGRATIONS, which every kind's ``setup`` applies at once. Record
kinds that other processes cache keep a change counter (:func:`bump_counter`) in
``record_counters``.
"""

from __future__ import annotations

import queue
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loopmark.errors import ConfigInvalid, RecordsUnavailable
from loopmark.records.common import Clock, split_records_url

# How long a writer waits for another writer before giving up with "database is locked" (then
# RecordsUnavailable: a 503, and a failure the records' circuit breaker counts). Writes hold the
# lock for well under a millisecond, so only a stuck disk or a stuck process ever reaches this;
# a request thread must not wait longer than a few seconds for either. Readers never wait (WAL).
BUSY_TIMEOUT_SECONDS = 5.0
JOURNAL_MODE_RETRY_SECONDS = 0.02
# Connections kept open between uses; a burst beyond this opens (then closes) extra ones.
IDLE_CONNECTIONS_MAX = 8

# Schema versions, in order: MIGRATIONS[n] takes a database from user_version n to n + 1.
# Never edit a released entry; append one. Each entry is a tuple of single SQL statements.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE render_records (
            key TEXT PRIMARY KEY,
            status TEXT NOT NULL CHECK (status IN ('rendering', 'done', 'failed', 'blocked')),
            template_id TEXT NOT NULL,
            caption TEXT NOT NULL,
            caption_fold TEXT NOT NULL,
            owner TEXT,
            lease_until REAL NOT NULL,
            progress REAL NOT NULL,
            attempts INTEGER NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            media TEXT,
            error TEXT
        )
        """,
        "CREATE INDEX render_records_recent ON render_records (status, updated_at)",
        """
        CREATE INDEX render_records_template_recent
            ON render_records (template_id, status, updated_at)
        """,
    ),
    (
        # Change counters other processes poll (gallery, words): see bump_counter.
        """
        CREATE TABLE record_counters (
            name TEXT PRIMARY KEY,
            value INTEGER NOT NULL
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE gallery_entries (
            key TEXT PRIMARY KEY,
            template_id TEXT NOT NULL,
            caption TEXT NOT NULL,
            position INTEGER NOT NULL,
            added_at REAL NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL
        )
        """,
        "CREATE INDEX gallery_entries_position ON gallery_entries (position)",
        """
        CREATE TABLE caption_words (
            kind TEXT NOT NULL CHECK (kind IN ('banned', 'allowed')),
            word TEXT NOT NULL,
            PRIMARY KEY (kind, word)
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE admin_users (
            name TEXT PRIMARY KEY,
            password_hash TEXT NOT NULL,
            created_at REAL NOT NULL
        )
        """,
        """
        CREATE TABLE stats_events (
            day TEXT NOT NULL,
            template_id TEXT NOT NULL,
            event TEXT NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (day, event, template_id)
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE stats_captions (
            day TEXT NOT NULL,
            caption TEXT NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (day, caption)
        ) WITHOUT ROWID
        """,
    ),
    (
        # The durable queue (loopmark.records.renders): status 'queued', recorded before a render
        # is acknowledged, with what a restarted server needs to dispatch it again. The CHECK
        # only widens, so the table's text is edited in place (SQLite's documented procedure for
        # loosening a constraint) rather than the table copied: columns that other migrations
        # add are kept. RESET reloads the schema; the ALTERs then bump the schema cookie, so
        # every other connection reloads it too.
        "PRAGMA writable_schema = ON",
        """
        UPDATE sqlite_master
        SET sql = replace(sql, '(''rendering'', ''done''', '(''queued'', ''rendering'', ''done''')
        WHERE type = 'table' AND name = 'render_records'
        """,
        "PRAGMA writable_schema = RESET",
        "ALTER TABLE render_records ADD COLUMN words_version INTEGER",
        "ALTER TABLE render_records ADD COLUMN queued_at REAL NOT NULL DEFAULT 0",
    ),
    (
        # Admin sessions held server-side, and failed logins (records.users); when each render
        # was last asked for (service.retention), at most once a day per key.
        """
        CREATE TABLE admin_sessions (
            id_hash TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            expires_at REAL NOT NULL
        ) WITHOUT ROWID
        """,
        "CREATE INDEX admin_sessions_name ON admin_sessions (name)",
        """
        CREATE TABLE login_failures (
            name TEXT NOT NULL,
            address TEXT NOT NULL,
            at REAL NOT NULL
        )
        """,
        "CREATE INDEX login_failures_pair ON login_failures (address, name, at)",
        """
        CREATE TABLE render_hits (
            key TEXT PRIMARY KEY,
            last_hit_at REAL NOT NULL
        ) WITHOUT ROWID
        """,
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


def sqlite_path_from_url(url: str) -> Path:
    """``sqlite:///var/loopmark.db`` → ``var/loopmark.db`` (relative to the working directory);
    ``sqlite:////srv/loopmark.db`` → ``/srv/loopmark.db``. The usual SQLAlchemy reading, which is
    also what the default ``sqlite:///$LOOPMARK_DATA_DIR/loopmark.db`` produces for either kind
    of data directory.
    """
    scheme, rest = split_records_url(url)
    path = rest[1:] if rest.startswith("/") else ""
    if scheme != "sqlite" or not path or path.startswith(":memory:") or "?" in path:
        raise ConfigInvalid(
            f"LOOPMARK_RECORDS must look like sqlite:///path/to/file.db, got {url!r}"
        )
    return Path(path)


class SqliteDatabase:
    """One SQLite file in WAL mode, shared by threads through a small pool of connections.

    Connections are opened lazily (never at construction) and each is used by one thread at a
    time. Writes run in ``BEGIN IMMEDIATE`` transactions: the write lock is taken up front, so a
    read-then-write never has to upgrade its lock (the upgrade is what fails with "database is
    locked" without waiting), and the busy timeout queues writers instead.
    """

    def __init__(self, path: Path | str) -> None:
        # Fixed now, so a later chdir does not move the database.
        self.path = Path(path).absolute()
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()

    def _connect(self, *, create: bool) -> sqlite3.Connection:
        # mode=rw: outside setup, a missing file is an error, not a new empty database.
        mode = "rwc" if create else "rw"
        uri = f"file:{urllib.parse.quote(str(self.path))}?mode={mode}"
        conn = sqlite3.connect(
            uri,
            uri=True,
            timeout=BUSY_TIMEOUT_SECONDS,
            isolation_level=None,  # autocommit; transactions are explicit BEGIN IMMEDIATE
            check_same_thread=False,  # the pool hands a connection to one thread at a time
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
            # With WAL, NORMAL loses no committed data on a crash of the process, only
            # possibly on power loss, and saves an fsync per write.
            conn.execute("PRAGMA synchronous = NORMAL")
            if not create:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version < SCHEMA_VERSION:
                    raise RecordsUnavailable(
                        f"SQLite records at {self.path} have schema version {version}, "
                        f"this code needs {SCHEMA_VERSION}: run `loopmark setup`"
                    )
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection until the block ends; sqlite3 errors → RecordsUnavailable."""
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._connect(create=False)
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc
        try:
            yield conn
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc
        finally:
            if conn.in_transaction or self._idle.qsize() >= IDLE_CONNECTIONS_MAX:
                conn.close()
            else:
                self._idle.put(conn)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction, committed when the block ends, else rolled back."""
        with self.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def migrate(self) -> None:
        """Create the file and bring its schema to SCHEMA_VERSION. Idempotent, safe to race."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RecordsUnavailable(f"cannot create {self.path.parent}: {exc}") from exc
        try:
            conn = self._connect(create=True)
            try:
                # WAL is a property of the file: set once here, every later connection uses it.
                mode = _journal_mode_wal(conn)
                if str(mode).lower() != "wal":
                    raise RecordsUnavailable(f"SQLite at {self.path} refused WAL mode ({mode})")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    # Read inside the write transaction, so two racing setups apply each step once.
                    version = conn.execute("PRAGMA user_version").fetchone()[0]
                    for number in range(version, SCHEMA_VERSION):
                        for statement in MIGRATIONS[number]:
                            conn.execute(statement)
                        conn.execute(f"PRAGMA user_version = {number + 1}")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc

    def close(self) -> None:
        """Close the idle connections (those in use close when their block ends)."""
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return

    def _unavailable(self, exc: sqlite3.Error) -> RecordsUnavailable:
        if not self.path.exists():
            return RecordsUnavailable(f"no SQLite records at {self.path}: run `loopmark setup`")
        return RecordsUnavailable(f"SQLite records at {self.path}: {exc}")


def _journal_mode_wal(conn: sqlite3.Connection) -> str:
    """Switch the file to WAL (once; later calls find it so). The switch needs the file to
    itself, and SQLite answers "database is locked" at once rather than wait when racing setups
    each hold a read lock (its busy handler would deadlock there): so try again, within the busy
    timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(JOURNAL_MODE_RETRY_SECONDS)


def bump_counter(conn: sqlite3.Connection, name: str) -> None:
    """Add one to counter ``name`` inside the caller's write transaction (with its change)."""
    conn.execute(
        "INSERT INTO record_counters (name, value) VALUES (?, 1)"
        " ON CONFLICT (name) DO UPDATE SET value = value + 1",
        (name,),
    )


def read_counter(conn: sqlite3.Connection, name: str) -> int:
    """Counter ``name``: 0 until its first change."""
    row = conn.execute("SELECT value FROM record_counters WHERE name = ?", (name,)).fetchone()
    return 0 if row is None else int(row[0])


class SqliteAdapter:
    """What every record type's class over a SqliteDatabase shares: the database, the clock,
    setup (the migrations, which create every record type's tables at once) and close."""

    def __init__(self, db: SqliteDatabase, *, clock: Clock = time.time) -> None:
        self.db = db
        self._clock = clock

    def setup(self) -> None:
        self.db.migrate()

    def close(self) -> None:
        self.db.close()
