"""Rendered share pages, kept per process: the page a crowd opens from one shared link.

A done render's share page changes only with what its record says (caption, size, renditions,
a take-down), the page's language and the address asked for (the language switch repeats its
query). So its HTML is rendered once per (key, what the records said, language) and reused; an
address with other query arguments is made afresh and never kept (see pages.share). About 60 %
of the page's CPU was Jinja and ``url_for``. The record is still read on every request, before
the cache is asked, so a take-down, a re-render or a records outage shows at once; only the
HTML is reused. Headers (caching, CSP, language) and compression are added per response as
before. Bounded (least recently used first out) and one per app, since two apps in one process
may have other sites' addresses.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from flask import current_app

MAX_PAGES = 512  # about 12 KB each: a few MB at most
_EXTENSION = "loopmark.page_cache"


class PageCache:
    """A bounded map from a page's inputs to its HTML; safe across request threads."""

    def __init__(self, max_pages: int = MAX_PAGES) -> None:
        self.max_pages = max_pages
        self._pages: OrderedDict[Hashable, str] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_render(self, inputs: Hashable, render: Callable[[], str]) -> str:
        """The HTML for ``inputs``: kept, or made by ``render`` (outside the lock: two threads
        may render the same page once each, never wait on each other) and kept."""
        with self._lock:
            html = self._pages.get(inputs)
            if html is not None:
                self._pages.move_to_end(inputs)
                return html
        html = render()
        with self._lock:
            self._pages[inputs] = html
            self._pages.move_to_end(inputs)
            while len(self._pages) > self.max_pages:
                self._pages.popitem(last=False)
        return html

    def __len__(self) -> int:
        return len(self._pages)


def share_pages() -> PageCache:
    """This app's cache of share pages (made on first use)."""
    cache: PageCache | None = current_app.extensions.get(_EXTENSION)
    if cache is None:
        cache = current_app.extensions.setdefault(_EXTENSION, PageCache())
    return cache
