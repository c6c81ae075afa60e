"""Fingerprinted static assets: ``asset_url("css/site.css")`` → ``/static/css/site.css?v=<hash>``.

A URL whose ``v`` matches the file's current content hash is served immutable (a year, never
revalidated); any other static URL is served ``no-cache`` so a stale fingerprint or a bare URL
still revalidates. Stylesheets and scripts are sent compressed (brotli, else gzip): each file
is compressed once per process and encoding, since flask-compress leaves streamed files (all of
static/) alone. Static files are package data, fixed for the life of a process: each file is
hashed once per process, and its URL built once (a share page links seven assets; stat-ing and
building each on every page was a fifth of the page's CPU). In debug (``make run``) files are
stat-ed on every call and hashed again when their size or modification time changes, so an
edited stylesheet shows at the next reload.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import logging
import threading
from pathlib import Path

import brotli
from flask import (
    Flask,
    Response,
    current_app,
    has_app_context,
    has_request_context,
    request,
    url_for,
)
from flask_compress import Compress
from werkzeug.http import parse_accept_header
from werkzeug.security import safe_join

from loopmark.package_data import STATIC_DIR
from loopmark.storage.base import IMMUTABLE_CACHE_CONTROL
from loopmark.web.context import services

log = logging.getLogger(__name__)

HASH_CHARS = 12  # hex digits of SHA-256 in the fingerprint: plenty against accidental reuse
REVALIDATE_CACHE_CONTROL = "no-cache"
ASSETS_EXTENSION = "loopmark.assets"
# Text files worth compressing (fonts, images and video are compressed already).
COMPRESSED_SUFFIXES = frozenset({".css", ".js", ".svg", ".json", ".txt"})
COMPRESS_MIN_BYTES = 1024  # under one packet either way
ENCODINGS = ("br", "gzip")  # preferred first, as the app's COMPRESS_ALGORITHM
ACCEPT_ENCODING_KEPT_CHARS = 200
BROTLI_QUALITY = 11  # the slowest and smallest: paid once per file and process
GZIP_LEVEL = 9


class _Fingerprints:
    """One app's fingerprints and URLs of existing static files, computed once (only files that
    exist are kept, so asking for made-up names grows nothing)."""

    def __init__(self, *, restat: bool) -> None:
        self.restat = restat
        self._lock = threading.Lock()
        self.versions: dict[str, str] = {}
        self.urls: dict[tuple[str, str], str] = {}

    def version(self, filename: str) -> str | None:
        if self.restat:
            return _current_fingerprint(filename)
        found = self.versions.get(filename)
        if found is None:
            found = _current_fingerprint(filename)
            if found is not None:
                with self._lock:
                    self.versions[filename] = found
        return found


class Compression(Compress):
    """flask-compress (dynamic text answers compressed per response), deciding at once for the
    answers it leaves alone anyway: one encoded already (a kept page, a static file) or
    declared smaller than COMPRESS_MIN_SIZE (an API answer) gets the Vary it would add, without
    its parse of Accept-Encoding and the checks before it (a tenth of a cache hit's app time)."""

    def after_request(self, response: Response | None) -> Response:
        if response is not None:
            length = response.content_length
            if "Content-Encoding" in response.headers or (
                length is not None
                and length < (self.app or current_app).config["COMPRESS_MIN_SIZE"]
            ):
                vary_accept_encoding(response)
                return response
        answer: Response = super().after_request(response)
        return answer


def vary_accept_encoding(response: Response) -> None:
    """``Vary: Accept-Encoding`` added to what the answer varies by, as flask-compress does."""
    vary = response.headers.get("Vary")
    if not vary:
        response.headers["Vary"] = "Accept-Encoding"
    elif "accept-encoding" not in vary.lower():
        response.headers["Vary"] = f"{vary}, Accept-Encoding"


def init_app(app: Flask) -> None:
    app.extensions[ASSETS_EXTENSION] = _Fingerprints(restat=services(app).settings.debug)
    app.jinja_env.globals["asset_url"] = asset_url
    # Registered after Compress and the headers hook, so it runs before both: flask-compress
    # then sees Content-Encoding and leaves the body alone; Cache-Control is set as for any file.
    app.after_request(_compress_static)


def _compress_static(response: Response) -> Response:
    """A whole static text file sent compressed in the best encoding the browser accepts."""
    if (
        request.endpoint != "static"
        or request.method not in ("GET", "HEAD")
        or response.status_code != 200
        or "Content-Encoding" in response.headers
    ):
        return response
    path = asset_path((request.view_args or {}).get("filename", ""))
    if path is None or path.suffix not in COMPRESSED_SUFFIXES:
        return response
    encoding = preferred_encoding()
    stat = path.stat()
    if encoding is None or stat.st_size < COMPRESS_MIN_BYTES:
        return response
    etag = f"{_digest(str(path), stat.st_size, stat.st_mtime_ns)}-{encoding}"
    vary_accept_encoding(response)
    response.headers.pop("Accept-Ranges", None)  # ranges of the encoded body are not offered
    response.close()  # the file send_file opened
    response.direct_passthrough = False
    response.set_etag(etag)
    if request.if_none_match.contains(etag):
        response.status_code = 304
        response.set_data(b"")
        response.headers.pop("Content-Length", None)
        return response
    response.set_data(_compressed(str(path), stat.st_size, stat.st_mtime_ns, encoding))
    response.headers["Content-Encoding"] = encoding
    return response


@functools.lru_cache(maxsize=64)
def _compressed(path: str, size: int, mtime_ns: int, encoding: str) -> bytes:
    return compress_once(Path(path).read_bytes(), encoding)


def preferred_encoding() -> str | None:
    """The best of ENCODINGS the request's browser accepts, or None."""
    header = request.environ.get("HTTP_ACCEPT_ENCODING", "")
    if len(header) > ACCEPT_ENCODING_KEPT_CHARS:
        return _preferred_encoding.__wrapped__(header)
    return _preferred_encoding(header)


@functools.lru_cache(maxsize=256)
def _preferred_encoding(header: str) -> str | None:
    # By the header's text: browsers send a handful of them, and parsing one each request was
    # a twentieth of a kept page's CPU. Headers longer than any browser's are not kept.
    accepted = parse_accept_header(header)
    return next((e for e in ENCODINGS if accepted.quality(e) > 0), None)


def compress_once(data: bytes, encoding: str) -> bytes:
    """``data`` compressed with ``encoding`` ("br" or "gzip") at the encoder's best: for bodies
    compressed once and sent many times (static files, kept pages)."""
    if encoding == "br":
        return bytes(brotli.compress(data, quality=BROTLI_QUALITY))
    return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)


def asset_path(filename: str) -> Path | None:
    """The file under static/ that ``filename`` names, or None (missing, or outside static/)."""
    joined = safe_join(str(STATIC_DIR), filename)
    if joined is None:
        return None
    path = Path(joined)
    return path if path.is_file() else None


def fingerprint(filename: str) -> str | None:
    """The content hash of a static file, or None when there is no such file."""
    fingerprints = _fingerprints()
    if fingerprints is None:
        return _current_fingerprint(filename)
    return fingerprints.version(filename)


def _fingerprints() -> _Fingerprints | None:
    if not has_app_context():
        return None
    found: _Fingerprints | None = current_app.extensions.get(ASSETS_EXTENSION)
    return found


def _current_fingerprint(filename: str) -> str | None:
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
    fingerprints = _fingerprints()
    cache_key = (request.script_root if has_request_context() else "", filename)
    if fingerprints is not None and not fingerprints.restat:
        url = fingerprints.urls.get(cache_key)
        if url is not None:
            return url
    version = fingerprint(filename)
    if version is None:
        log.warning("static asset %r not found; linking it without a fingerprint", filename)
        return url_for("static", filename=filename)
    url = url_for("static", filename=filename, v=version)
    if fingerprints is not None and not fingerprints.restat:
        fingerprints.urls[cache_key] = url
    return url


def static_cache_control(filename: str, version: str | None) -> str:
    """Cache-Control for a static file fetched with ``?v=version``."""
    if version and version == fingerprint(filename):
        return IMMUTABLE_CACHE_CONTROL
    return REVALIDATE_CACHE_CONTROL
