"""Rendered answers kept per process: the share page a crowd opens from one shared link, and a
done render's JSON that a crowd's cache hits ask for.

A done render's share page changes only with what its record says (caption, size, renditions,
a take-down), the page's language, the site's origin (its absolute links) and the query (the
language switch repeats it). So its HTML is rendered once per (key, what the records said,
language, origin) and reused; an address with query arguments other than ``lang`` is made afresh
and never kept (see pages.share), and ``lang`` alone changes nothing but the language. About
60 % of the page's CPU was Jinja and ``url_for``. The record is still read on every request
(kept a second at most: service.record_cache), before the cache is asked, so a take-down, a
re-render or a records outage shows; only the text is reused. Headers (caching, CSP,
language) are added per response as before; a kept page is compressed once per encoding the
browsers ask for (``compress_kept_page``), at the encoders' best (brotli 11, gzip 9: paid once,
not per request). A done render's JSON (``done_outcomes``) is kept the same way, by what its
record says. Bounded (least recently used first
out) and one per app, since two apps in one process may have other sites' addresses.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from flask import Flask, Response, current_app, g, request
from werkzeug.http import generate_etag

from loopmark.web.assets import compress_once, preferred_encoding

MAX_PAGES = 512  # about 12 KB each, with their encodings: a few MB at most
_SHARE_PAGES = "loopmark.page_cache"
_DONE_OUTCOMES = "loopmark.outcome_cache"
IDENTITY = "identity"
_KEPT = "kept_page"  # g: (cache, inputs) of the page this response carries


class _Kept:
    __slots__ = ("encoded", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.encoded: dict[str, tuple[bytes, str]] = {}  # encoding → (body, its ETag)


class PageCache:
    """A bounded map from a page's inputs to its text (and that text compressed, per encoding);
    safe across request threads."""

    def __init__(self, max_pages: int = MAX_PAGES) -> None:
        self.max_pages = max_pages
        self._pages: OrderedDict[Hashable, _Kept] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_render(self, inputs: Hashable, render: Callable[[], str]) -> str:
        """The text for ``inputs``: kept, or made by ``render`` (outside the lock: two threads
        may render the same page once each, never wait on each other) and kept."""
        with self._lock:
            kept = self._pages.get(inputs)
            if kept is not None:
                self._pages.move_to_end(inputs)
                return kept.text
        text = render()
        with self._lock:
            self._pages[inputs] = _Kept(text)
            self._pages.move_to_end(inputs)
            while len(self._pages) > self.max_pages:
                self._pages.popitem(last=False)
        return text

    def encoded(self, inputs: Hashable, encoding: str) -> tuple[bytes, str] | None:
        """The kept text for ``inputs`` as sent with ``encoding`` ("identity", "br", "gzip"),
        and its ETag, both made on first ask; None when it is no longer kept."""
        with self._lock:
            kept = self._pages.get(inputs)
        if kept is None:
            return None
        sent = kept.encoded.get(encoding)
        if sent is None:
            body = kept.text.encode()
            if encoding != IDENTITY:
                body = compress_once(body, encoding)
            sent = kept.encoded[encoding] = (body, generate_etag(body))
        return sent

    def __len__(self) -> int:
        return len(self._pages)


def _app_cache(name: str) -> PageCache:
    cache: PageCache | None = current_app.extensions.get(name)
    if cache is None:
        cache = current_app.extensions.setdefault(name, PageCache())
    return cache


def share_pages() -> PageCache:
    """This app's cache of share pages (made on first use)."""
    return _app_cache(_SHARE_PAGES)


def done_outcomes() -> PageCache:
    """This app's cache of done renders' JSON (made on first use)."""
    return _app_cache(_DONE_OUTCOMES)


def send_kept(cache: PageCache, inputs: Hashable, render: Callable[[], str]) -> str:
    """``cache.get_or_render``, noting that this response carries a kept page, so
    ``compress_kept_page`` sends its kept compressed form."""
    text = cache.get_or_render(inputs, render)
    setattr(g, _KEPT, (cache, inputs))
    return text


def init_app(app: Flask) -> None:
    # Registered after Compress, so it runs before it: flask-compress then sees
    # Content-Encoding and leaves the body alone (it still adds Vary).
    app.after_request(compress_kept_page)


def compress_kept_page(response: Response) -> Response:
    """A kept page's body, compressed once per encoding, in the best one the browser accepts,
    with its ETag (made once too: the headers hook then leaves it)."""
    kept: tuple[PageCache, Hashable] | None = g.pop(_KEPT, None)
    if (
        kept is None
        or response.status_code != 200
        or request.method not in ("GET", "HEAD")
        or "Content-Encoding" in response.headers
    ):
        return response
    encoding = preferred_encoding() or IDENTITY
    sent = kept[0].encoded(kept[1], encoding)
    if sent is None:  # pushed out meanwhile by other pages: made per response, as others are
        return response
    body, etag = sent
    response.set_data(body)
    response.set_etag(etag)
    if encoding != IDENTITY:
        response.headers["Content-Encoding"] = encoding
    return response
