"""LocalBlobStore specifics: paths for the /media/ route, atomic writes, URL forms, the warning."""

from __future__ import annotations

import logging
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from loopmark.config import Settings
from loopmark.errors import StorageUnavailable
from loopmark.storage import LocalBlobStore, open_blob_store

KEY = "r/ab/abcdef0123456789/loop.gif"
# Keys that would name a file outside the root, or a temporary file, if they were joined to it.
ESCAPING_KEYS = ["../etc/passwd", "/etc/passwd", "r/../../x", "r/.tmp-x", "media/../../x"]

# Runs in a child process because RLIMIT_FSIZE would also break pytest's own capture files.
# The limit makes the write fail with EFBIG part-way through, a real partial write.
FAILING_WRITE_SCRIPT = textwrap.dedent(
    """
    import resource, signal, sys
    from loopmark.errors import StorageUnavailable
    from loopmark.storage.local import LocalBlobStore

    store = LocalBlobStore(sys.argv[1])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))
    try:
        store.put(sys.argv[2], b"n" * (1024 * 1024), content_type="image/gif")
    except StorageUnavailable as exc:
        print("StorageUnavailable", type(exc.__cause__).__name__)
    else:
        print("written")
    """
)


def _files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    blob_store = LocalBlobStore(tmp_path / "media")
    blob_store.setup()
    return blob_store


def test_path_is_the_file_under_root(store: LocalBlobStore) -> None:
    store.put(KEY, b"GIF89a", content_type="image/gif")
    path = store.path(KEY)
    assert path == store.root / "r" / "ab" / "abcdef0123456789" / "loop.gif"
    assert path.read_bytes() == b"GIF89a"


@pytest.mark.parametrize("bad_key", ESCAPING_KEYS)
def test_path_refuses_keys_that_could_leave_root(store: LocalBlobStore, bad_key: str) -> None:
    with pytest.raises(ValueError):
        store.path(bad_key)


def test_local_path_is_the_path_of_a_stored_key(store: LocalBlobStore) -> None:
    store.put(KEY, b"GIF89a", content_type="image/gif")
    assert store.local_path(KEY) == store.path(KEY)


@pytest.mark.parametrize("bad_key", ESCAPING_KEYS)
def test_local_path_of_a_key_that_could_leave_root_is_none(
    store: LocalBlobStore, bad_key: str
) -> None:
    # A file the traversal would reach exists, so None comes from the key check, not absence.
    (store.root.parent / "x").write_bytes(b"outside")
    assert store.local_path(bad_key) is None


def test_local_path_skips_temporary_files(store: LocalBlobStore) -> None:
    (store.root / "r").mkdir()
    (store.root / "r" / ".tmp-x").write_bytes(b"partial")
    assert store.local_path("r/.tmp-x") is None


def test_successful_puts_leave_only_final_files(store: LocalBlobStore) -> None:
    store.put(KEY, b"one", content_type="image/gif")
    store.put(KEY, b"two", content_type="image/gif")
    assert _files_under(store.root) == [KEY]


def test_media_files_are_world_readable(store: LocalBlobStore) -> None:
    # mkstemp makes 0600 files; a web server running as another user must still serve them.
    store.put(KEY, b"x", content_type="image/gif")
    assert stat.S_IMODE(store.path(KEY).stat().st_mode) == 0o644


def test_failed_write_leaves_no_file(store: LocalBlobStore) -> None:
    result = subprocess.run(
        [sys.executable, "-c", FAILING_WRITE_SCRIPT, str(store.root), KEY],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.split() == ["StorageUnavailable", "OSError"]
    assert not store.exists(KEY)
    assert _files_under(store.root) == []


def test_failed_overwrite_keeps_the_old_bytes(store: LocalBlobStore) -> None:
    store.put(KEY, b"old", content_type="image/gif")
    result = subprocess.run(
        [sys.executable, "-c", FAILING_WRITE_SCRIPT, str(store.root), KEY],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.startswith("StorageUnavailable")
    assert store.get(KEY) == b"old"
    assert _files_under(store.root) == [KEY]


def test_relative_dot_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    blob_store = open_blob_store("file://./rel/media")
    assert isinstance(blob_store, LocalBlobStore)
    assert blob_store.root == tmp_path / "rel" / "media"


def test_default_setting_opens_the_data_dir_media(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Settings turns the default "./var" into "file://var/media": a relative path, not a host.
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    blob_store = open_blob_store(settings.storage_url)
    assert isinstance(blob_store, LocalBlobStore)
    assert blob_store.root == tmp_path / "var" / "media"
    absolute = open_blob_store(Settings.from_env({"LOOPMARK_DATA_DIR": str(tmp_path)}).storage_url)
    assert isinstance(absolute, LocalBlobStore)
    assert absolute.root == tmp_path / "media"


def test_nothing_is_created_before_setup(tmp_path: Path) -> None:
    blob_store = LocalBlobStore(tmp_path / "later" / "media")
    assert not (tmp_path / "later").exists()
    with pytest.raises(StorageUnavailable, match="loopmark setup"):
        blob_store.check()
    blob_store.setup()
    blob_store.check()
    assert blob_store.root.is_dir()


def test_setup_over_a_file_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "media").write_bytes(b"not a directory")
    blob_store = LocalBlobStore(tmp_path / "media")
    with pytest.raises(StorageUnavailable) as excinfo:
        blob_store.setup()
    assert isinstance(excinfo.value.__cause__, OSError)


def test_development_warning_is_logged_once_per_directory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="loopmark.storage.local")
    LocalBlobStore(tmp_path / "one")
    LocalBlobStore(tmp_path / "one")
    LocalBlobStore(tmp_path / "two")
    messages = [r.getMessage() for r in caplog.records if r.name == "loopmark.storage.local"]
    assert len(messages) == 2
    assert all("for development" in message for message in messages)
    assert str(tmp_path / "one") in messages[0]
