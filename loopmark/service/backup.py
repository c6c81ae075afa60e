"""Backing the records up and restoring them, without losing a take-down (``loopmark backup``,
``loopmark restore``).

Copying a live SQLite file is not a backup: in WAL mode the latest writes live in the ``-wal``
file until a checkpoint (a copy of the main file alone held 0 of 47 records here, and no blocked
key or gallery entry). A backup uses SQLite's online backup API (``sqlite3.Connection.backup``),
which copies a consistent snapshot while the server keeps writing, and beside it the take-down
markers kept in storage (``blocked/<key>.json``, see service.blocklist). A restore copies the
snapshot back the same way, brings its schema up to date, puts back any marker storage lost, and
takes down again every key blocked in storage that the older snapshot does not block — so a
take-down made after the backup is still in force after the restore.

A running ``loopmark serve`` holds a shared lock on ``<database>.lock`` (released by the kernel
however the server ends, SIGKILL included); a restore takes that lock exclusively and refuses
while a server holds it, unless forced.

DynamoDB is not backed up here: its point-in-time recovery (on in the CDK stack) restores a table
to any second of the last 35 days; point LOOPMARK_RECORDS at the restored table and run
``loopmark setup``, which re-applies the take-downs kept in S3.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from loopmark.errors import BadInput, RecordsUnavailable
from loopmark.records.sqlite import SCHEMA_VERSION, sqlite_path_from_url
from loopmark.service.blocklist import RENDER_KEY_RE, marked_keys, marker_key
from loopmark.storage.base import BlobStore

DATABASE_FILE = "loopmark.db"
MANIFEST_FILE = "backup.json"
MARKERS_DIR = "blocked"
# Pages copied per step of the backup API: the server's writers get the lock between steps.
BACKUP_PAGES_PER_STEP = 1024
BUSY_TIMEOUT_SECONDS = 10.0
DYNAMODB_REFUSAL = (
    "DynamoDB records are backed up by point-in-time recovery (on in the CDK stack): "
    "`aws dynamodb restore-table-to-point-in-time`, point LOOPMARK_RECORDS at the new table, "
    "then `loopmark setup` re-applies the take-downs kept in storage"
)


@dataclass(frozen=True)
class BackupSummary:
    folder: Path
    records: int  # render records
    blocked: int  # of which blocked
    gallery: int
    markers: int  # take-downs kept in storage

    def line(self, verb: str) -> str:
        return (
            f"{verb} {self.records} render records ({self.blocked} blocked), "
            f"{self.gallery} gallery entries and {self.markers} take-down markers: {self.folder}"
        )


def database_path(records_url: str) -> Path:
    """The SQLite file behind ``records_url``; BadInput (one line on PITR) for DynamoDB."""
    if records_url.lower().startswith("dynamodb://"):
        raise BadInput(DYNAMODB_REFUSAL)
    return sqlite_path_from_url(records_url).absolute()


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


@contextlib.contextmanager
def serving(records_url: str) -> Iterator[None]:
    """Held by ``loopmark serve`` while it runs: a shared lock a restore can see (SQLite only)."""
    if not records_url.lower().startswith("sqlite:"):
        yield
        return
    path = lock_path(sqlite_path_from_url(records_url).absolute())
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)
        yield


def backup(records_url: str, blobs: BlobStore, folder: Path) -> BackupSummary:
    """Write a consistent snapshot of the records and the take-down markers to ``folder``."""
    source_path = database_path(records_url)
    if not source_path.is_file():
        raise BadInput(f"no SQLite records at {source_path}: nothing to back up")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / DATABASE_FILE
    staging = folder / f".{DATABASE_FILE}.partial"
    staging.unlink(missing_ok=True)
    try:
        with _open(source_path, readonly=True) as source, _open(staging) as copy:
            source.backup(copy, pages=BACKUP_PAGES_PER_STEP)
            # One self-contained file, not a WAL pair.
            copy.execute("PRAGMA journal_mode = DELETE")
            _check_integrity(copy, staging)
            counts = _counts(copy)
    except sqlite3.Error as exc:
        staging.unlink(missing_ok=True)
        raise RecordsUnavailable(f"backup of {source_path} failed: {exc}") from exc
    os.replace(staging, target)
    markers = folder / MARKERS_DIR
    markers.mkdir(exist_ok=True)
    keys = sorted(marked_keys(blobs))
    for key in keys:
        _write_file(markers / f"{key}.json", blobs.get(marker_key(key)))
    summary = BackupSummary(folder, *counts, markers=len(keys))
    manifest = {
        "created_at": time.time(),
        "schema_version": SCHEMA_VERSION,
        "render_records": summary.records,
        "blocked": summary.blocked,
        "gallery_entries": summary.gallery,
        "markers": summary.markers,
    }
    _write_file(folder / MANIFEST_FILE, json.dumps(manifest, indent=2).encode())
    return summary


def restore(records_url: str, blobs: BlobStore, folder: Path, *, force: bool) -> BackupSummary:
    """Copy the snapshot in ``folder`` over the records (not while a server runs, unless
    ``force``) and put back the markers storage lacks. The caller then re-applies the blocklist
    (service.blocklist.reapply) and the schema's migrations (``loopmark setup``)."""
    target_path = database_path(records_url)
    source_path = folder / DATABASE_FILE
    if not source_path.is_file():
        raise BadInput(f"no backup in {folder}: {DATABASE_FILE} is missing")
    with _exclusive(lock_path(target_path), force=force):
        try:
            with _open(source_path, readonly=True) as source:
                _check_integrity(source, source_path)
                version = source.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise BadInput(
                        f"the backup has schema version {version}, newer than this code's "
                        f"{SCHEMA_VERSION}: restore it with the version that made it"
                    )
                counts = _counts(source)
                target_path.parent.mkdir(parents=True, exist_ok=True)
                with _open(target_path) as target:
                    source.backup(target, pages=BACKUP_PAGES_PER_STEP)
                    target.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error as exc:
            raise RecordsUnavailable(f"restore of {source_path} failed: {exc}") from exc
    have = marked_keys(blobs)
    restored_markers = 0
    for path in sorted((folder / MARKERS_DIR).glob("*.json")):
        key = path.stem
        if RENDER_KEY_RE.fullmatch(key) is not None and key not in have:
            blobs.put(marker_key(key), path.read_bytes(), content_type="application/json")
            restored_markers += 1
    return BackupSummary(folder, *counts, markers=restored_markers)


@contextlib.contextmanager
def _exclusive(path: Path, *, force: bool) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not force:
                raise BadInput(
                    f"a running server uses {path.with_suffix('')}: stop it first, "
                    "or pass --force to restore under it"
                ) from None
        yield


@contextlib.contextmanager
def _open(path: Path, *, readonly: bool = False) -> Iterator[sqlite3.Connection]:
    mode = "ro" if readonly else "rwc"
    conn = sqlite3.connect(
        f"file:{path}?mode={mode}", uri=True, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None
    )
    try:
        yield conn
    finally:
        conn.close()


def _check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    result = conn.execute("PRAGMA quick_check").fetchone()[0]
    if result != "ok":
        raise BadInput(f"{path} is damaged ({result}): not used")


def _counts(conn: sqlite3.Connection) -> tuple[int, int, int]:
    def count(sql: str) -> int:
        try:
            return int(conn.execute(sql).fetchone()[0])
        except sqlite3.OperationalError:  # a table this snapshot does not have
            return 0

    return (
        count("SELECT COUNT(*) FROM render_records"),
        count("SELECT COUNT(*) FROM render_records WHERE status = 'blocked'"),
        count("SELECT COUNT(*) FROM gallery_entries"),
    )


def _write_file(path: Path, data: bytes) -> None:
    staging = path.with_name(f".{path.name}.partial")
    handle: IO[bytes]
    with staging.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staging, path)
