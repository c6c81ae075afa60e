"""SQLite adapter specifics: the URL, the file, WAL, schema versions, and many threads at once."""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from loopmark.errors import ConfigInvalid, RecordsUnavailable
from loopmark.records import open_render_records
from loopmark.records.sqlite import (
    SCHEMA_VERSION,
    SqliteDatabase,
    SqliteRenderRecords,
    sqlite_path_from_url,
)
from tests.records.conftest import set_up

STRESS_SECONDS = 2.0
THREADS = 20


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
    for call in (adapter.check, lambda: adapter.get("k")):
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


def test_twenty_threads_of_mixed_work_never_see_database_is_locked(
    records: SqliteRenderRecords,
) -> None:
    keys = [f"key{i}" for i in range(12)]
    errors: list[BaseException] = []
    completed: Counter[str] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)

    def work(worker: int) -> None:
        rng = random.Random(worker)
        owner = f"worker{worker}"
        barrier.wait()
        deadline = time.monotonic() + STRESS_SECONDS
        try:
            while time.monotonic() < deadline:
                key = rng.choice(keys)
                action = rng.random()
                if action < 0.4:
                    held = records.claim_lease(
                        key, owner=owner, template_id="t", caption=key, lease_seconds=0.01
                    )
                    if held is None:
                        continue
                    records.extend_lease(key, owner=owner, lease_seconds=0.01, progress=0.5)
                    if rng.random() < 0.3:
                        records.fail(key, owner=owner, error="boom")
                    elif records.complete(key, owner=owner, media={"gif": f"{key}.gif"}):
                        with lock:
                            completed[key] += 1
                elif action < 0.9:
                    records.get(key)
                else:
                    records.list_recent(limit=5, query="key")
        except BaseException as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(completed.values()) > 0  # the work really happened
    assert max(completed.values()) == 1  # done is written once per key, never re-claimed
    for key in keys:
        record = records.get(key)
        if key in completed:
            assert record is not None and record.status == "done"
        else:
            assert record is None or record.status in {"rendering", "failed"}
