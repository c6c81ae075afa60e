"""LocalBlobStore: media as files under one directory, for development and single-server runs."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from loopmark.errors import ConfigInvalid, StorageUnavailable
from loopmark.storage.base import (
    LOCAL_MEDIA_PREFIX,
    StoredBlob,
    attachment_disposition,
    check_media_base_url,
    validate_key,
)

logger = logging.getLogger(__name__)

FILE_SCHEME = "file://"
# Temporary files start with "." so they can never collide with a key (validate_key refuses
# segments starting with "."), and live in the final directory so os.replace is a rename.
_TEMP_PREFIX = ".tmp-"
COPY_CHUNK_BYTES = 1024 * 1024


@functools.cache
def _warn_development_only(root: str) -> None:
    # Logged once per directory, so a production deploy that forgot LOOPMARK_STORAGE is visible in
    # the logs without flooding them. Not warnings.warn: that would be an error under pytest.
    logger.warning(
        "media are stored in the local directory %s: fine for development and a single server, "
        "not for a deployment that scales out (set LOOPMARK_STORAGE=s3://bucket/prefix)",
        root,
    )


class LocalBlobStore:
    """Files under ``root``, one per key; the site serves them under ``/media/<key>``."""

    def __init__(self, root: str | os.PathLike[str], *, media_base_url: str | None = None) -> None:
        self.root = Path(root).absolute()
        self.media_base_url = (
            None if media_base_url is None else check_media_base_url(media_base_url)
        )
        _warn_development_only(str(self.root))

    @classmethod
    def from_url(cls, url: str, *, media_base_url: str | None = None) -> LocalBlobStore:
        """``file:///abs/dir``, ``file://./rel/dir`` or ``file://rel/dir`` (relative to the
        working directory; the form ``Settings`` builds from a relative ``LOOPMARK_DATA_DIR``)."""
        if not url.startswith(FILE_SCHEME):
            raise ConfigInvalid(
                f"LOOPMARK_STORAGE for local files must start with file://, got {url!r}"
            )
        # Not urllib.parse: it reads "file://var/media" as host "var", but it means a relative path.
        raw_path = url[len(FILE_SCHEME) :]
        if not raw_path or "?" in raw_path or "#" in raw_path:
            raise ConfigInvalid(
                f"LOOPMARK_STORAGE must be file:///abs/dir or file://./rel/dir, got {url!r}"
            )
        return cls(raw_path, media_base_url=media_base_url)

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    def path(self, key: str) -> Path:
        """The file that holds ``key`` (for the site's ``/media/`` route); may not exist."""
        return self.root / validate_key(key)

    def presigned_post(
        self, key: str, *, max_bytes: int, content_type: str, expires_s: int
    ) -> tuple[str, dict[str, str]] | None:
        validate_key(key)
        return None  # the site receives uploads itself (site.uploads)

    def local_path(self, key: str) -> Path | None:
        """``path(key)`` when it is a stored blob; None for an invalid key or no file."""
        try:
            path = self.path(key)
        except ValueError:
            return None
        return path if self.exists(key) else None

    def put(self, key: str, data: bytes, *, content_type: str) -> None:
        self._write(key, lambda temp: temp.write(data))

    def put_file(self, key: str, source: Path, *, content_type: str) -> None:
        def copy(temp: BinaryIO) -> None:
            with open(source, "rb") as src:
                shutil.copyfileobj(src, temp, COPY_CHUNK_BYTES)

        self._write(key, copy)

    def get_file(self, key: str, target: Path) -> None:
        path = self.path(key)
        with self._reading(key), open(path, "rb") as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out, COPY_CHUNK_BYTES)

    @contextlib.contextmanager
    def _reading(self, key: str) -> Iterator[None]:
        """Reads speak the port's language: a missing key is FileNotFoundError ("r/ab" is a
        directory of other keys here, but in S3 it is simply absent), the rest an outage."""
        try:
            yield
        except FileNotFoundError:
            raise
        except (IsADirectoryError, NotADirectoryError) as exc:
            raise FileNotFoundError(f"no media under key {key!r}") from exc
        except OSError as exc:
            raise StorageUnavailable(f"cannot read media under {self.root}: {exc}") from exc

    def _write(self, key: str, fill: Callable[[BinaryIO], object]) -> None:
        # content_type is not stored: the /media/ route derives it from the extension.
        target = self.path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temp_name = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=target.parent)
        except OSError as exc:
            raise StorageUnavailable(f"cannot write media under {self.root}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb") as temp:
                fill(temp)
            # mkstemp creates 0600; media are public, and a web server may run as another user.
            os.chmod(temp_name, 0o644)
            os.replace(temp_name, target)
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
            if isinstance(exc, OSError):
                raise StorageUnavailable(f"cannot write media under {self.root}: {exc}") from exc
            raise

    def get(self, key: str) -> bytes:
        path = self.path(key)
        with self._reading(key):
            return path.read_bytes()

    def exists(self, key: str) -> bool:
        path = self.path(key)
        try:
            return path.is_file()
        except OSError as exc:
            raise StorageUnavailable(f"cannot read media under {self.root}: {exc}") from exc

    def url(self, key: str) -> str:
        base = LOCAL_MEDIA_PREFIX if self.media_base_url is None else self.media_base_url
        return base + validate_key(key)

    def download_url(self, key: str, filename: str, *, content_type: str) -> str | None:
        """None: the site serves the file itself, with the attachment disposition."""
        validate_key(key)
        attachment_disposition(filename)
        return None

    @property
    def urls_are_public(self) -> bool:
        return True

    def delete(self, key: str) -> None:
        path = self.path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            # A directory of other keys, or a parent that is a file: there is no blob to delete.
            if not path.is_file():
                return
            raise StorageUnavailable(f"cannot delete media under {self.root}: {exc}") from exc

    def list(self, prefix: str) -> Iterator[StoredBlob]:
        # A prefix may end inside a segment ("r/a" finds "r/ab/..."): walk from its folder.
        if prefix:
            validate_key(prefix.rstrip("/"))
        folder = self.root / prefix.rpartition("/")[0]
        try:
            for dirpath, dirnames, filenames in os.walk(folder):
                # Hidden names are temporary files (see _TEMP_PREFIX), never keys.
                dirnames[:] = sorted(name for name in dirnames if not name.startswith("."))
                base = Path(dirpath)
                for name in sorted(filenames):
                    key = (base / name).relative_to(self.root).as_posix()
                    if name.startswith(".") or not key.startswith(prefix):
                        continue
                    try:
                        stat = (base / name).stat()
                    except FileNotFoundError:  # deleted meanwhile
                        continue
                    yield StoredBlob(key, stat.st_mtime, stat.st_size)
        except OSError as exc:
            raise StorageUnavailable(f"cannot list media under {self.root}: {exc}") from exc

    def setup(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"cannot create media directory {self.root}: {exc}") from exc

    def check(self) -> None:
        if not self.root.is_dir():
            raise StorageUnavailable(
                f"media directory {self.root} does not exist (run `loopmark setup`)"
            )
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageUnavailable(f"media directory {self.root} is not writable")
