"""SQLite plumbing (loopmark.records.sqlite): the URL, the file, WAL, schema versions and setup
races, seen through the render records' adapter."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest

from loopmark.errors import ConfigInvalid, RecordsUnavailable
from loopmark.records import open_render_records
from loopmark.records.renders import SqliteRenderRecords
from loopmark.records.sqlite import (
    MIGRATIONS,
    SCHEMA_VERSION,
    SqliteDatabase,
    sqlite_path_from_url,
)
from tests.records.conftest import set_up


@pytest.fixture
def records(tmp_path: Path) -> Iterator[SqliteRenderRecords]:
    yield from set_up(SqliteRenderRecords(SqliteDatabase(tmp_path / "loopmark.db")))


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///./var/loopmark.db", "var/loopmark.db"),
        ("sqlite:///var/loopmark.db", "var/loopmark.db"),
        ("sqlite:////srv/data/loopmark.db", "/srv/data/loopmark.db"),
    ],
)
def test_url_to_path(url: str, path: str) -> None:
    assert sqlite_path_from_url(url) == Path(path)


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite:///",
        "sqlite:///:memory:",
        "sqlite://host/x.db",
        "loopmark.db",
        "pg://x",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigInvalid) as caught:
        open_render_records(url)
    assert caught.value.code == "config_invalid"


def test_a_relative_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    adapter = open_render_records("sqlite:///./var/loopmark.db")
    assert not (tmp_path / "var").exists()  # nothing happens before setup
    adapter.setup()
    assert (tmp_path / "var" / "loopmark.db").is_file()
    adapter.check()
    adapter.close()


def test_setup_makes_a_wal_database_at_the_current_schema_version(
    records: SqliteRenderRecords,
) -> None:
    with closing(sqlite3.connect(records.db.path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"render_records_recent", "render_records_template_recent"} <= indexes


def test_without_setup_every_call_is_unavailable_and_no_file_appears(tmp_path: Path) -> None:
    adapter = SqliteRenderRecords(SqliteDatabase(tmp_path / "missing.db"))
    calls: tuple[Callable[[], object], ...] = (adapter.check, lambda: adapter.get("k"))
    for call in calls:
        with pytest.raises(RecordsUnavailable, match="loopmark setup"):
            call()
    assert not (tmp_path / "missing.db").exists()


def test_an_old_schema_is_unavailable_until_setup(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE unrelated (x)")
    adapter = SqliteRenderRecords(SqliteDatabase(path))
    with pytest.raises(RecordsUnavailable, match="schema version 0"):
        adapter.get("k")
    adapter.setup()
    assert adapter.get("k") is None
    adapter.close()


def test_racing_setups_apply_the_schema_once(tmp_path: Path) -> None:
    path = tmp_path / "race.db"
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def run() -> None:
        barrier.wait()
        try:
            SqliteDatabase(path).migrate()
        except BaseException as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_the_queue_migration_keeps_every_record_and_column_and_admits_queued(
    tmp_path: Path,
) -> None:
    """A database from before the durable queue (schema 2) is upgraded in place: its render
    records, and a column another migration added, survive; 'queued' is now a status, and the
    CHECK still refuses anything else, on a connection opened before the upgrade too."""
    path = tmp_path / "v2.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        for number, statements in enumerate(MIGRATIONS[:2]):
            for statement in statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")
        conn.execute("ALTER TABLE render_records ADD COLUMN someone_elses INTEGER")
        conn.execute(
            "INSERT INTO render_records VALUES"
            " ('k', 'done', 't', 'Hi', 'hi', NULL, 0, 1, 1, 1.0, 2.0, '{}', NULL, 42)"
        )
    with closing(sqlite3.connect(path, isolation_level=None)) as early:
        early.execute("SELECT count(*) FROM render_records").fetchall()  # schema cached
        records = SqliteRenderRecords(SqliteDatabase(path))
        records.setup()
        record = records.get("k")
        assert record is not None and (record.status, record.caption) == ("done", "Hi")
        assert (record.words_version, record.queued_at) == (None, 0.0)
        assert records.enqueue("q", template_id="t", caption="Yo", words_version=3)
        early.execute("UPDATE render_records SET status = 'queued' WHERE key = 'k'")
        with pytest.raises(sqlite3.IntegrityError):
            early.execute("UPDATE render_records SET status = 'bogus' WHERE key = 'k'")
        assert (
            early.execute("SELECT someone_elses FROM render_records WHERE key = 'k'").fetchone()[0]
            == 42
        )
        assert early.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        records.close()
