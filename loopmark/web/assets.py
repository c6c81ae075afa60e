"""Fingerprinted static assets: ``asset_url("css/site.css")`` → ``/static/css/site.css?v=<hash>``.

A URL whose ``v`` matches the file's current content hash is served immutable (a year, never
revalidated); any other static URL is served ``no-cache`` so a stale fingerprint or a bare URL
still revalidates. Hashes are cached per file size and modification time.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from pathlib import Path

from flask import Flask, url_for
from werkzeug.security import safe_join

from loopmark.package_data import STATIC_DIR
from loopmark.storage.base import IMMUTABLE_CACHE_CONTROL

log = logging.getLogger(__name__)

HASH_CHARS = 12  # hex digits of SHA-256 in the fingerprint: plenty against accidental reuse
REVALIDATE_CACHE_CONTROL = "no-cache"


def init_app(app: Flask) -> None:
    app.jinja_env.globals["asset_url"] = asset_url


def asset_path(filename: str) -> Path | None:
    """The file under static/ that ``filename`` names, or None (missing, or outside static/)."""
    joined = safe_join(str(STATIC_DIR), filename)
    if joined is None:
        return None
    path = Path(joined)
    return path if path.is_file() else None


def fingerprint(filename: str) -> str | None:
    """The content hash of a static file, or None when there is no such file."""
    path = asset_path(filename)
    if path is None:
        return None
    stat = path.stat()
    return _digest(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=512)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()[:HASH_CHARS]


def asset_url(filename: str) -> str:
    """The fingerprinted URL of a static file (plain URL, logged, when the file is missing)."""
    version = fingerprint(filename)
    if version is None:
        log.warning("static asset %r not found; linking it without a fingerprint", filename)
        return url_for("static", filename=filename)
    return url_for("static", filename=filename, v=version)


def static_cache_control(filename: str, version: str | None) -> str:
    """Cache-Control for a static file fetched with ``?v=version``."""
    if version and version == fingerprint(filename):
        return IMMUTABLE_CACHE_CONTROL
    return REVALIDATE_CACHE_CONTROL
