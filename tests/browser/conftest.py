"""Browser-test fixtures: the real site on a loopback port, driven by Debian's Chromium.

The site runs in a background thread (the production server, as `loopmark serve` runs it) over
the repository's demo templates, with fresh media and SQLite records; Chromium is
/usr/bin/chromium (``make test`` installs it) driven by Playwright for Python. Playwright never
downloads a browser here. Screenshots go to test-artifacts/browser/ (gitignored).
"""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from loopmark import create_app
from loopmark.composition import setup_backends
from loopmark.service.render_service import RenderService
from loopmark.web.context import services
from loopmark.web.server import create_server
from tests.paths import DEMO_TEMPLATES, REPO

SERVER_STOP_SECONDS = 10
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
QUEUE_SIZE = 16  # renders waiting for the one worker; more answer 429
ARTIFACTS = REPO / "test-artifacts" / "browser"
# Preparing the three demo templates takes seconds each on a shared machine.
WARM_UP_SECONDS = 300
DESKTOP = {"viewport": {"width": 1280, "height": 860}}
PHONE = {
    "viewport": {"width": 360, "height": 740},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}


@dataclass
class LiveSite:
    """The running site: its base URL and app (to reach the render service directly)."""

    url: str
    app: Flask
    server: Any = field(repr=False)  # cheroot, as `loopmark serve` runs it

    @property
    def render(self) -> RenderService:
        return services(self.app).render


def live_site_config(data: Path) -> dict[str, Any]:
    """create_app's config for a site over the demo templates, its media and records in ``data``."""
    return {
        "TESTING": True,
        "SECRET_KEY": "browser-test-only",
        "LOOPMARK_DATA_DIR": str(data),
        "LOOPMARK_TEMPLATES_DIR": str(DEMO_TEMPLATES),
        "LOOPMARK_STORAGE": f"file://{data / 'media'}",
        "LOOPMARK_RECORDS": f"sqlite:///{data / 'loopmark.db'}",
        "LOOPMARK_DISPATCH": "local",
        "LOOPMARK_MEDIA_BASE_URL": "",
        # One worker: renders queue up behind each other, so the queue position is real.
        "LOOPMARK_RENDER_CONCURRENCY": "1",
        # A short queue, so a test can fill it and see the 429 answer and its Retry-After.
        "LOOPMARK_QUEUE_SIZE": str(QUEUE_SIZE),
        "LOOPMARK_RATE_LIMITS": "off",
        "LOOPMARK_JSON_LOGS": "off",
        # flask-compress's streaming path never closes a streamed file (static files):
        # a ResourceWarning per request. Reported to the site's owner; off until fixed.
        "COMPRESS_STREAMS": False,
    }


@pytest.fixture(scope="session")
def live_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    data = tmp_path_factory.mktemp("browser-site")
    app = create_app(live_site_config(data))
    setup_backends(services(app).settings)
    server = create_server(app, "127.0.0.1", 0, threads=8)
    thread = threading.Thread(target=server.run, name="live-site", daemon=True)
    thread.start()
    site = LiveSite(f"http://127.0.0.1:{server.effective_port}", app, server)
    try:
        # Prepares every template once, before any page waits on it.
        with urllib.request.urlopen(f"{site.url}/api/templates", timeout=WARM_UP_SECONDS) as r:
            assert len(json.load(r)) == 3
        yield site
    finally:
        server.close()
        thread.join(SERVER_STOP_SECONDS)
        services(app).close()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
    )
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@dataclass
class Watched:
    """A page, and the script errors and console errors it produced (CSP refusals included)."""

    page: Page
    errors: list[str]

    def assert_clean(self, *, allow: tuple[str, ...] = ()) -> None:
        unexpected = [e for e in self.errors if not any(a in e for a in allow)]
        assert unexpected == [], unexpected


def open_page(context: BrowserContext) -> Watched:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on(
        "console",
        lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None,
    )
    return Watched(page, errors)


def new_context(browser: Browser, live_site: LiveSite, **options: object) -> BrowserContext:
    context = browser.new_context(base_url=live_site.url, accept_downloads=True, **options)  # type: ignore[arg-type]
    context.set_default_timeout(float(os.environ.get("LOOPMARK_BROWSER_TIMEOUT_MS", "30000")))
    return context


@pytest.fixture
def desktop(browser: Browser, live_site: LiveSite) -> Iterator[BrowserContext]:
    context = new_context(browser, live_site, **DESKTOP)
    yield context
    context.close()


@pytest.fixture
def phone(browser: Browser, live_site: LiveSite) -> Iterator[BrowserContext]:
    context = new_context(browser, live_site, **PHONE)
    yield context
    context.close()


@pytest.fixture
def reduced_motion(browser: Browser, live_site: LiveSite) -> Iterator[BrowserContext]:
    context = new_context(browser, live_site, reduced_motion="reduce", **DESKTOP)
    yield context
    context.close()


def expect_loop_playing(page: Page, timeout_ms: float = 60_000) -> None:
    """Wait for the page's loop to play, with no press of its retry button: a loop that plays
    for the visitor plays at once (see test_result_renditions for the script that once called
    a good loop broken on a busy machine)."""
    expect(page.locator("figure.media")).to_have_attribute(
        "data-state", "playing", timeout=timeout_ms
    )
