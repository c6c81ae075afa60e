"""Downloads when the media live on another origin, where browsers ignore ``download=``: a second
loopback server standing in for the CDN (local media, LOOPMARK_MEDIA_BASE_URL), and S3 on moto
(the page's media behind short links to signed URLs, the download a redirect to a URL signed with
the disposition). Either way the browser saves a file named after the brand."""

from __future__ import annotations

import contextlib
import functools
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from playwright.sync_api import Browser

from loopmark import create_app
from loopmark.composition import setup_backends
from loopmark.web.context import EXTENSION
from loopmark.web.server import create_server
from tests.browser.conftest import (
    DESKTOP,
    SERVER_STOP_SECONDS,
    LiveSite,
    expect_loop_playing,
    live_site_config,
    new_context,
    open_page,
)

RENDER_DONE_SECONDS = 180.0


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  # the base's name
        pass


@pytest.fixture
def cdn(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A plain static server over a media folder, on its own loopback port: another origin."""
    media = tmp_path / "media"
    media.mkdir()
    handler = functools.partial(QuietHandler, directory=str(media))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="cdn", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", media
    finally:
        server.shutdown()
        server.server_close()
        thread.join(SERVER_STOP_SECONDS)


@contextlib.contextmanager
def serve(app: Flask) -> Iterator[LiveSite]:
    setup_backends(app.extensions[EXTENSION].settings)
    server = create_server(app, "127.0.0.1", 0, threads=4)
    thread = threading.Thread(target=server.run, name="site", daemon=True)
    thread.start()
    try:
        yield LiveSite(f"http://127.0.0.1:{server.effective_port}", app, server)
    finally:
        server.close()
        thread.join(SERVER_STOP_SECONDS)
        app.extensions[EXTENSION].close()


def site_config(live_site: LiveSite, data: Path, **overrides: str) -> dict[str, Any]:
    """The live site's config over fresh records, reading the templates it prepared already."""
    prepared = live_site.app.extensions[EXTENSION].settings.prepared_dir
    return {**live_site_config(data), "LOOPMARK_PREPARED_DIR": str(prepared), **overrides}


def rendered(site: LiveSite, caption: str) -> str:
    key = site.render.request("wake-up", caption).key
    deadline = time.monotonic() + RENDER_DONE_SECONDS
    while (outcome := site.render.status(key)) is None or outcome.status != "done":
        assert time.monotonic() < deadline, f"render {key} not done"
        time.sleep(0.1)
    return key


def download_from_result_page(
    browser: Browser, site: LiveSite, key: str, media_origin: str
) -> None:
    context = new_context(browser, site, **DESKTOP)
    try:
        watched = open_page(context)
        page = watched.page
        page.goto(f"/r/{key}")
        expect_loop_playing(page)
        source = page.locator("figure.media video").evaluate("v => v.currentSrc")
        # The loop itself comes from the other origin (straight, or through a short link).
        with urllib.request.urlopen(source, timeout=30) as answer:
            assert answer.geturl().startswith(media_origin), answer.geturl()
        for ext, magic in (("gif", b"GIF89a"), ("mp4", b"ftyp")):
            with page.expect_download() as download:
                page.locator(f"a.download-{ext}").click()
            assert download.value.suggested_filename == f"hop-and-co-{key}.{ext}"
            path = download.value.path()
            assert magic in path.read_bytes()[:12]
        watched.assert_clean()
    finally:
        context.close()


def test_download_with_media_on_a_cdn_origin(
    browser: Browser, live_site: LiveSite, cdn: tuple[str, Path], tmp_path: Path
) -> None:
    cdn_url, media = cdn
    config = site_config(
        live_site,
        tmp_path / "site",
        LOOPMARK_STORAGE=f"file://{media}",
        LOOPMARK_MEDIA_BASE_URL=cdn_url,
    )
    with serve(create_app(config)) as site:
        key = rendered(site, "Saved from the CDN")
        assert urlsplit(cdn_url).port != urlsplit(site.url).port
        download_from_result_page(browser, site, key, cdn_url)


def test_download_with_media_on_s3(
    browser: Browser, live_site: LiveSite, aws: str, tmp_path: Path
) -> None:
    config = site_config(live_site, tmp_path / "site", LOOPMARK_STORAGE="s3://loopmark-dl/media")
    with serve(create_app(config)) as site:
        key = rendered(site, "Saved from S3")
        download_from_result_page(browser, site, key, aws)
