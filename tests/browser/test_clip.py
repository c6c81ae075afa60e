""" "Use your own clip" in a real browser (issue 13): a real clip picked, played, trimmed,
captioned, uploaded with progress and rendered to the result page with a GIF, on a desktop and
a phone; a file that is not a video refused in plain words; no such section when uploads are off.
"""

from __future__ import annotations

import re
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from loopmark import create_app
from loopmark.composition import setup_backends
from loopmark.web.context import EXTENSION
from loopmark.web.server import create_server
from tests.browser.conftest import (
    DESKTOP,
    PHONE,
    SERVER_STOP_SECONDS,
    LiveSite,
    live_site_config,
    new_context,
    open_page,
)
from tests.browser.test_accessibility import AXE_JS, violations
from tests.browser.test_creator import fill_queue

CLIP = Path("/work/shared/clips/bigbuckbunny.mp4")  # 5.3 s, 1280×720 H.264, about 1 MB
RESULT_TIMEOUT_MS = 180_000  # the clip is prepared, then rendered, on a shared machine
PHONE_390 = {**PHONE, "viewport": {"width": 390, "height": 844}}


@pytest.fixture(params=["desktop", "phone"])
def context(
    request: pytest.FixtureRequest, browser: Browser, live_site: LiveSite
) -> Iterator[BrowserContext]:
    context = new_context(
        browser, live_site, **(DESKTOP if request.param == "desktop" else PHONE_390)
    )
    yield context
    context.close()


def choose(page: Page, path: Path) -> None:
    page.goto("/")
    section = page.locator("#clip")
    expect(section).to_be_visible()
    expect(section.get_by_role("heading", name="Use your own clip")).to_be_visible()
    page.locator("#clip-file").set_input_files(str(path))


def test_the_journey_with_a_real_clip(
    context: BrowserContext, live_site: LiveSite, artifacts: Path
) -> None:
    watched = open_page(context)
    page = watched.page
    choose(page, CLIP)
    form = page.locator("#clip-form")
    expect(form).to_be_visible()
    # The clip plays from an object URL; the scrubber knows its length from the browser.
    video = page.locator("#clip-video")
    expect(video).to_have_attribute("src", re.compile(r"^blob:"))
    page.wait_for_function("() => document.getElementById('clip-video').readyState >= 1")
    assert float(page.locator("#clip-start").get_attribute("max") or "0") == pytest.approx(
        4.8, abs=0.11
    )
    expect(page.locator("#clip-trim-summary")).to_contain_text("From 0.0 s to")

    # Keyboard: start at 1.0 s, then a length of 2.0 s.
    start = page.get_by_label("Start", exact=True)
    start.focus()
    for _ in range(10):
        page.keyboard.press("ArrowRight")
    length = page.get_by_label("Length", exact=True)
    length.fill("2")
    expect(page.locator("#clip-trim-summary")).to_have_text("From 1.0 s to 3.0 s (2.0 s)")
    caption = page.get_by_label("Caption (optional)")
    # A caption of its own per viewport, so each journey really renders (not a cached render).
    words = f"My own bunny on a {context_name(page)}"
    caption.fill(words)
    expect(page.locator("#clip-caption-count")).to_have_text(f"{len(words)} / 80")
    page.screenshot(path=str(artifacts / f"clip-{context_name(page)}-trim.png"), full_page=True)

    # Sent: the upload's progress (the real bar), then the render's, then the result page.
    statuses: list[str] = []
    page.expose_function("noteStatus", lambda status: statuses.append(status))
    page.evaluate(
        """() => new MutationObserver(() => window.noteStatus(
             document.querySelector('#clip-progress .progress-status').textContent))
           .observe(document.querySelector('#clip-progress .progress-status'),
                    {childList: true, characterData: true, subtree: true})"""
    )
    fill_queue(live_site, f"clip {uuid.uuid4().hex[:8]}")  # other visitors' renders ahead
    with page.expect_request(lambda r: "/api/uploads/" in r.url and r.method == "POST") as sent:
        form.get_by_role("button", name="Create my GIF").click()
    assert sent.value.headers.get("x-loopmark-visitor"), "the upload carries the visitor token"
    assert sent.value.headers["content-type"].startswith("multipart/form-data")
    page.wait_for_url(re.compile(r"/r/[a-z2-7]{24}$"), timeout=RESULT_TIMEOUT_MS)
    assert any(s.startswith("Uploading your clip… 100%") for s in statuses), statuses
    assert any(s.startswith(("In the queue", "Rendering your GIF")) for s in statuses), statuses
    gif = page.locator("a[href$='.gif']").first
    expect(gif).to_be_attached(timeout=60_000)
    href = gif.get_attribute("href") or ""
    with urllib.request.urlopen(live_site.url + href, timeout=30) as response:
        assert response.read(6) in (b"GIF89a", b"GIF87a")
    expect(page.locator(".result-caption")).to_contain_text(words)
    page.screenshot(path=str(artifacts / f"clip-{context_name(page)}-result.png"), full_page=True)
    watched.assert_clean()


def context_name(page: Page) -> str:
    return "phone" if (page.viewport_size or {"width": 0})["width"] < 700 else "desktop"


def test_a_file_that_is_not_a_video_is_refused_in_plain_words(
    context: BrowserContext, tmp_path: Path
) -> None:
    fake = tmp_path / "holiday.mp4"  # a PNG with a video's name: the browser calls it video/mp4
    fake.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 4096)
    watched = open_page(context)
    page = watched.page
    choose(page, fake)
    page.locator("#clip-form").get_by_role("button", name="Create my GIF").click()
    error = page.locator("#clip-file-error")
    expect(error).to_be_visible(timeout=30_000)
    expect(error).to_have_text(re.compile(r"\w+ .*\w"))
    assert "Traceback" not in (error.text_content() or "")
    expect(page.locator("#clip-form")).to_be_hidden()
    expect(page.locator("#clip-file")).to_be_focused()
    # The server said 422: the page shows its reason, not a generic failure.
    assert "didn't go through" not in (error.text_content() or "")
    watched.assert_clean(allow=("422",))


def test_a_refusal_the_browser_can_tell_is_shown_before_any_upload(
    context: BrowserContext, tmp_path: Path
) -> None:
    document = tmp_path / "notes.txt"
    document.write_text("not a video at all")
    watched = open_page(context)
    page = watched.page
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/api/uploads" in r.url else None)
    choose(page, document)
    expect(page.locator("#clip-file-error")).to_have_text(
        "That file isn't a video. Choose an MP4, MOV or WebM clip."
    )
    expect(page.locator("#clip-form")).to_be_hidden()
    assert requests == []
    watched.assert_clean()


@pytest.fixture
def site_without_uploads(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "templates").mkdir()
    config = live_site_config(tmp_path) | {
        "LOOPMARK_UPLOADS": "off",
        "LOOPMARK_TEMPLATES_DIR": str(tmp_path / "templates"),  # nothing to prepare
    }
    app = create_app(config)
    setup_backends(app.extensions[EXTENSION].settings)
    server = create_server(app, "127.0.0.1", 0, threads=2)
    thread = threading.Thread(target=server.run, name="site-without-uploads", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        thread.join(SERVER_STOP_SECONDS)
        app.extensions[EXTENSION].close()


def test_no_own_clip_when_uploads_are_off(browser: Browser, site_without_uploads: str) -> None:
    context = browser.new_context(base_url=site_without_uploads, **DESKTOP)  # type: ignore[arg-type]
    try:
        watched = open_page(context)
        page = watched.page
        page.goto("/")
        expect(page.locator("#create")).to_be_attached()
        expect(page.get_by_text("Use your own clip")).to_have_count(0)
        assert page.locator("script[src*='clip']").count() == 0
    finally:
        context.close()


def test_the_clip_form_has_no_serious_accessibility_violations(
    browser: Browser, live_site: LiveSite, tmp_path: Path
) -> None:
    source = axe_source_text()
    for options in (DESKTOP, PHONE_390):
        context = new_context(browser, live_site, bypass_csp=True, **options)
        try:
            page = open_page(context).page
            choose(page, CLIP)
            expect(page.locator("#clip-form")).to_be_visible()
            found = {"clip form": violations(page, source)}
            page.locator("#clip-caption").fill("x" * 81)
            expect(page.locator("#clip-error")).to_be_visible()
            found["caption too long"] = violations(page, source)
            page.locator("#clip-file").set_input_files(str(_text_file(tmp_path)))
            expect(page.locator("#clip-file-error")).to_be_visible()
            found["refused file"] = violations(page, source)
            # Nothing wider than the screen (a phone at 390 px).
            assert (
                page.evaluate("() => document.documentElement.scrollWidth")
                <= (
                    options["viewport"]["width"]  # type: ignore[index]
                )
            )
            assert found == {name: [] for name in found}, found
        finally:
            context.close()


def axe_source_text() -> str:
    if not AXE_JS.is_file():
        pytest.fail(f"{AXE_JS} is missing: `make test` installs axe-core from npm")
    return AXE_JS.read_text(encoding="utf-8")


def _text_file(folder: Path) -> Path:
    path = folder / "letter.txt"
    path.write_text("dear bunny")
    return path
