"""The creator in a real browser: pick, caption, progress, result, share and download, on a
desktop and a phone viewport; a refused caption shown inline; reduced motion honoured."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from loopmark.errors import QueueFull
from loopmark.service.render_service import media_keys
from tests.browser.conftest import (
    QUEUE_SIZE,
    LiveSite,
    expect_loop_playing,
    new_context,
    open_page,
)

# Renders queued ahead of the visitor's, so the page shows a real queue and progress; at about
# 0.4 s each on one worker, they outlast the API's two-second hold with room to spare
# (fewer than QUEUE_SIZE, so the visitor's own render is still accepted).
RENDERS_AHEAD = 14
RESULT_TIMEOUT_MS = 180_000  # the queue ahead must drain first; the machine is shared
PREVIEW_URL = re.compile(r"^/templates/[a-z0-9-]+/[0-9a-z-]+/preview\.mp4$")
POSTER_URL = re.compile(r"^/templates/[a-z0-9-]+/[0-9a-z-]+/poster\.jpg$")


@pytest.fixture
def browser_1280x800(browser: Browser, live_site: LiveSite) -> Iterator[BrowserContext]:
    context = new_context(browser, live_site, viewport={"width": 1280, "height": 800})
    yield context
    context.close()


def fill_queue(site: LiveSite, tag: str) -> None:
    """Submit renders straight to the service, as other visitors would."""
    for i in range(RENDERS_AHEAD):
        outcome = site.render.request("wake-up", f"Queue {tag} {i}")
        assert outcome.status in ("queued", "rendering")


def shot(page: Page, artifacts: Path, name: str) -> None:
    page.evaluate("() => document.fonts.ready.then(() => true)")
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def caption_pixels(page: Page) -> int:
    """Non-transparent pixels the live preview drew on its canvas."""
    # What the script returns: Playwright types every evaluation as Any.
    pixels: int = page.evaluate(
        """() => {
            const c = document.getElementById('preview-canvas');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
            return n;
        }"""
    )
    return pixels


def pick(page: Page, name: str) -> None:
    page.locator(".tpl-card", has_text=name).click()
    expect(page.locator("#step-caption")).to_be_visible()
    expect(page.locator("#step-pick")).to_be_hidden()


def check_result(page: Page, site: LiveSite, caption: str, artifacts: Path, name: str) -> str:
    """On the result page: the GIF shown, share links right, downloads work. The key."""
    assert re.fullmatch(rf"{re.escape(site.url)}/r/[a-z2-7]{{24}}", page.url), page.url
    key = urlsplit(page.url).path.rsplit("/", 1)[-1]
    figure = page.locator("figure.media")
    expect(figure).to_have_attribute("data-state", "playing", timeout=60_000)
    assert_playing_mp4(page, caption)
    expect(page.locator(".result-caption")).to_contain_text(caption)
    shot(page, artifacts, f"{name}-result")

    share_url = f"{site.url}/s/{key}"
    assert len(urlsplit(share_url).path) <= 32
    links: dict[str, str] = {}
    for kind in ("facebook", "x", "whatsapp", "email"):
        href = page.locator(f"a.share-{kind}").get_attribute("href")
        assert href is not None, kind
        links[kind] = href
    assert parse_qs(urlsplit(links["facebook"]).query)["u"] == [share_url]
    assert parse_qs(urlsplit(links["x"]).query)["url"] == [share_url]
    assert share_url in parse_qs(urlsplit(links["whatsapp"]).query)["text"][0]
    assert share_url in parse_qs(urlsplit(links["email"]).query)["body"][0]
    expect(page.locator(".share-url")).to_have_value(share_url)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.locator("button.share-copy").click()
    expect(page.locator(".share-feedback")).to_have_text("Link copied!")
    assert page.evaluate("navigator.clipboard.readText()") == share_url

    with page.expect_download() as gif_download:
        page.locator("a.download-gif").click()
    assert gif_download.value.suggested_filename == f"hop-and-co-{key}.gif"
    saved = artifacts / f"{name}-download.gif"
    gif_download.value.save_as(saved)
    assert saved.read_bytes()[:6] == b"GIF89a"
    with page.expect_download() as mp4_download:
        page.locator("a.download-mp4").click()
    assert mp4_download.value.suggested_filename == f"hop-and-co-{key}.mp4"
    return key


def assert_playing_mp4(page: Page, caption: str) -> None:
    """The page's loop is a muted, looping, inline <video> of the MP4 that is playing."""
    video = page.locator("figure.media video.media-video")
    expect(video).to_have_attribute("aria-label", caption)
    assert video.evaluate(
        """v => v.autoplay && v.muted && v.loop && v.playsInline && !!v.poster &&
            v.currentSrc.endsWith('.mp4') && !v.paused && v.videoWidth > 0 &&
            v.querySelector('source').type === 'video/mp4'"""
    )
    assert page.locator("figure.media img").count() == 0


def check_share_page(page: Page, site: LiveSite, key: str, caption: str) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"/s/{key}")
    expect(page.locator("figure.media")).to_have_attribute("data-state", "playing")
    assert_playing_mp4(page, caption)
    # Looked at, never fetched: the GIF is for downloads and sharing only.
    assert [url for url in requested if ".gif" in urlsplit(url).path] == []
    assert any(urlsplit(url).path.endswith(".mp4") for url in requested)
    assert page.locator('meta[name="robots"]').get_attribute("content") == "noindex"

    def meta(name: str) -> str | None:
        return page.locator(f'meta[property="{name}"], meta[name="{name}"]').get_attribute(
            "content"
        )

    assert meta("og:title") == caption
    assert meta("og:image") == f"{site.url}" + urlsplit(meta("og:image") or "").path
    assert (meta("og:video") or "").endswith(".mp4")
    assert (meta("og:image:width"), meta("og:image:height")) == ("1200", "630")  # the card
    assert meta("twitter:card") == "summary_large_image"


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_full_creator_flow(
    request: pytest.FixtureRequest, device: str, live_site: LiveSite, artifacts: Path
) -> None:
    context: BrowserContext = request.getfixturevalue(device)
    watched = open_page(context)
    page = watched.page
    tag = uuid.uuid4().hex[:6]
    page.goto("/")
    expect(page.locator(".tpl-card")).to_have_count(3)
    # The hero loop (MP4, not a GIF) is started by script.
    expect(page.locator(".hero-video")).to_have_attribute("src", PREVIEW_URL)
    shot(page, artifacts, f"{device}-1-home")
    viewport = page.viewport_size or {"width": 0}
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]

    if device == "desktop":
        # Free text: typed with the keyboard, counted, previewed live.
        pick(page, "Big stretch")
        caption = f"Cold brew o'clock {tag}"
        page.locator("#caption-input").fill(caption)
        expect(page.locator("#caption-count")).to_have_text(f"{len(caption)} / 80")
    else:
        # Preset captions only: tapped from the suggestions.
        pick(page, "Head scratch")
        expect(page.locator("#caption-field")).to_be_hidden()
        caption = "Plot twist"
        page.locator(".chip", has_text=caption).click()
    page.wait_for_function("() => document.fonts.status === 'loaded'")
    assert caption_pixels(page) > 500
    shot(page, artifacts, f"{device}-2-caption")

    fill_queue(live_site, f"{device} {tag}")
    page.locator("#create-button").click()
    # A real queue ahead: the API answers 202 and the page shows position and progress.
    expect(page.locator("#step-create")).to_be_visible(timeout=30_000)
    expect(page.locator("#progress-status")).to_contain_text("ahead of you")
    expect(page.locator("#step-create [role=progressbar]")).to_have_attribute("aria-valuenow", "0")
    shot(page, artifacts, f"{device}-3-progress")
    page.wait_for_url("**/r/*", timeout=RESULT_TIMEOUT_MS)

    key = check_result(page, live_site, caption, artifacts, device)
    check_share_page(page, live_site, key, caption)
    shot(page, artifacts, f"{device}-4-share")
    watched.assert_clean()


def test_rejected_caption_is_shown_inline(desktop: BrowserContext, artifacts: Path) -> None:
    watched = open_page(desktop)
    page = watched.page
    page.goto("/")
    pick(page, "Wake up")
    page.locator("#caption-input").fill("what the fuck")
    error = page.locator("#caption-error")
    expect(error).to_be_visible()
    expect(error).not_to_be_empty()
    expect(page.locator("#caption-input")).to_have_attribute("aria-invalid", "true")
    # The refused words are not drawn over the loop, and the caption cannot be sent.
    page.wait_for_function("() => document.fonts.status === 'loaded'")
    assert caption_pixels(page) == 0
    expect(page.locator("#create-button")).to_be_disabled()
    page.locator("#caption-input").press("Enter")  # nor submitted from the keyboard
    expect(page.locator("#step-caption")).to_be_visible()
    assert "/r/" not in page.url
    shot(page, artifacts, "desktop-rejected-caption")
    # Fixing the caption clears the message, draws it and enables the button again.
    page.locator("#caption-input").fill("Rise and shine")
    expect(error).to_be_hidden()
    expect(page.locator("#create-button")).to_be_enabled()
    assert caption_pixels(page) > 500
    # Too long: said at once, and the button waits for a shorter caption.
    page.locator("#caption-input").fill("x" * 81)
    expect(error).to_contain_text("too long")
    expect(page.locator("#create-button")).to_be_disabled()
    watched.assert_clean(allow=("422",))


def test_rtl_captions_read_right_to_left_inside_their_quotes(
    desktop: BrowserContext, live_site: LiveSite
) -> None:
    page = open_page(desktop).page
    page.goto("/")
    pick(page, "Wake up")
    caption_input = page.locator("#caption-input")
    expect(caption_input).to_have_attribute("dir", "auto")
    caption = "صباح الخير"
    caption_input.fill(caption)
    assert caption_input.evaluate("e => getComputedStyle(e).direction") == "rtl"
    key = live_site.render.request("wake-up", caption).key
    for path, selector in ((f"/r/{key}", ".result-caption"), (f"/s/{key}", ".shared-title")):
        page.goto(path)
        element = page.locator(selector)
        expect(element).to_be_visible(timeout=RESULT_TIMEOUT_MS)  # the result page waits
        # The quotes belong to the page's (English) sentence: opening quote on the left; the
        # caption itself is isolated and runs right to left.
        assert element.evaluate("e => getComputedStyle(e).direction") == "ltr"
        assert element.locator("bdi").evaluate("e => getComputedStyle(e).direction") == "rtl"
        assert element.inner_text() == f"“{caption}”"


def test_the_caption_step_fits_a_laptop_screen(browser_1280x800: BrowserContext) -> None:
    """At 1280×800 "Create my GIF" is visible without scrolling once a loop is picked."""
    page = open_page(browser_1280x800).page
    page.goto("/")
    pick(page, "Big stretch")
    page.wait_for_timeout(800)  # the smooth scroll to the step
    box = page.locator("#create-button").bounding_box()
    assert box is not None
    assert box["y"] >= 0 and box["y"] + box["height"] <= 800, box


def test_keyboard_only_reaches_the_caption_step(desktop: BrowserContext) -> None:
    page = open_page(desktop).page
    page.goto("/")
    expect(page.locator(".tpl-card")).to_have_count(3)
    page.locator(".tpl-card input").first.focus()
    page.keyboard.press("ArrowRight")  # radios: arrows move the choice, staying on step 1
    page.keyboard.press("ArrowRight")
    expect(page.locator(".tpl-card input").nth(2)).to_be_checked()
    expect(page.locator("#step-pick")).to_be_visible()
    page.keyboard.press("Enter")  # Wake up: the visitor's own words
    expect(page.locator("#step-caption")).to_be_visible()
    for _ in range(6):  # Tab past the suggestions to the caption field
        if page.evaluate("document.activeElement.id") == "caption-input":
            break
        page.keyboard.press("Tab")
    page.keyboard.type("Hello keyboard")
    expect(page.locator("#caption-input")).to_have_value("Hello keyboard")
    page.keyboard.press("Enter")  # submits the caption form: on to the render
    page.wait_for_url("**/r/*", timeout=RESULT_TIMEOUT_MS)
    expect(page.locator("figure.media")).to_have_attribute("data-state", "playing")


def test_reduced_motion_shows_posters(
    reduced_motion: BrowserContext, live_site: LiveSite, artifacts: Path
) -> None:
    watched = open_page(reduced_motion)
    page = watched.page
    page.goto("/")
    expect(page.locator(".tpl-card")).to_have_count(3)
    hero = page.locator(".hero-video")
    expect(hero).to_have_attribute("poster", POSTER_URL)
    assert hero.get_attribute("src") is None and hero.evaluate("v => v.paused")
    for video in page.locator(".tpl-card video").all():
        video.scroll_into_view_if_needed()
        expect(video).to_have_attribute("poster", POSTER_URL)
        assert video.get_attribute("src") is None
    shot(page, artifacts, "reduced-motion-home")

    pick(page, "Wake up")
    assert page.locator("#preview-video").evaluate("v => v.paused && !v.getAttribute('src')")

    outcome = live_site.render.request("wake-up", "Slow and steady", wait_s=120)
    assert outcome.status == "done"
    page.goto(f"/r/{outcome.key}")
    figure = page.locator("figure.media")
    expect(figure).to_have_attribute("data-state", "poster")
    video = page.locator("figure.media video.media-video")
    assert video.evaluate("v => v.paused && v.currentTime === 0 && v.poster.endsWith('.jpg')")
    shot(page, artifacts, "reduced-motion-result")
    page.locator(".media-play").click()  # the loop only when asked for
    expect(figure).to_have_attribute("data-state", "playing")
    assert not video.evaluate("v => v.paused")
    watched.assert_clean()


def test_missing_gif_shows_a_message(
    desktop: BrowserContext, live_site: LiveSite, artifacts: Path
) -> None:
    watched = open_page(desktop)
    page = watched.page
    # A done render whose files went missing: the page renders, its media fail.
    outcome = live_site.render.request("wake-up", "Files gone", wait_s=RESULT_TIMEOUT_MS / 1000)
    assert outcome.status == "done", outcome
    for storage_key in media_keys(outcome.key).values():
        live_site.render.blobs.delete(storage_key)
    page.goto(f"/s/{outcome.key}")
    figure = page.locator("figure.media")
    expect(figure).to_have_attribute("data-state", "failed")
    expect(page.locator(".media-status")).to_contain_text("couldn't load")
    expect(page.locator(".media-retry")).to_be_visible()
    shot(page, artifacts, "share-missing-gif")
    watched.assert_clean(allow=("404", "Failed to load resource"))


def test_result_page_follows_a_queued_render(
    desktop: BrowserContext, live_site: LiveSite, artifacts: Path
) -> None:
    watched = open_page(desktop)
    page = watched.page
    fill_queue(live_site, "pending page")
    outcome = live_site.render.request("wake-up", "Worth the wait")
    page.goto(f"/r/{outcome.key}")
    expect(page.locator("#progress-status")).to_contain_text("ahead of you")
    shot(page, artifacts, "desktop-result-pending")
    # The page polls the real job and shows the GIF once it is done.
    expect_loop_playing(page, timeout_ms=RESULT_TIMEOUT_MS)
    assert page.url.endswith(f"/r/{outcome.key}")
    watched.assert_clean()


@pytest.mark.parametrize("path", ["/gallery", "/credits", "/no-such-page"])
def test_other_pages_on_a_phone(
    phone: BrowserContext, live_site: LiveSite, artifacts: Path, path: str
) -> None:
    watched = open_page(phone)
    page = watched.page
    response = page.goto(path)
    assert response is not None
    assert response.status == (404 if path == "/no-such-page" else 200)
    expect(page.locator("h1")).to_be_visible()
    # Readable on a 360-pixel phone: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    shot(page, artifacts, "phone-page" + path.replace("/", "-"))
    watched.assert_clean(allow=("404",))


# Headless Chromium on Linux has no Web Share API; this stands in for a phone's share sheet and
# records what the page hands it.
SHARE_SHEET = """
window.__shared = [];
navigator.canShare = (data) => !!data && Array.isArray(data.files) &&
    data.files.every((f) => f.type === 'image/gif');
navigator.share = async (data) => {
    const files = await Promise.all((data.files || []).map(async (f) => ({
        name: f.name,
        type: f.type,
        head: Array.from(new Uint8Array(await f.slice(0, 6).arrayBuffer())),
    })));
    window.__shared.push({ title: data.title, text: data.text, url: data.url || null, files });
};
"""


def test_web_share_shares_the_gif_file(desktop: BrowserContext, live_site: LiveSite) -> None:
    outcome = live_site.render.request("big-stretch", "Share the file", wait_s=120)
    assert outcome.status == "done"
    desktop.add_init_script(SHARE_SHEET)
    page = open_page(desktop).page
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"/r/{outcome.key}")
    expect_loop_playing(page)
    native = page.locator("button.share-native")
    expect(native).to_be_visible()
    assert not [url for url in requested if url.endswith(".gif")]  # not before the visitor asks
    expect(native).to_be_visible()
    native.hover()  # the file is read ahead of the tap
    expect(page.locator(".share")).to_have_attribute("data-file-ready", "true")
    native.click()
    page.wait_for_function("() => window.__shared.length === 1")
    shared = page.evaluate("window.__shared[0]")
    (gif,) = shared["files"]
    assert gif["type"] == "image/gif" and gif["name"].endswith(".gif")
    assert bytes(gif["head"]) == b"GIF89a"
    share_url = f"{live_site.url}/s/{outcome.key}"
    assert share_url in shared["text"] and "Share the file" in shared["title"]


def fill_to_the_brim(site: LiveSite, tag: str) -> None:
    """Submit renders until the queue refuses one (QueueFull). The one worker renders while
    they are submitted (a demo render takes a few tenths of a second, and the submitting thread
    shares the interpreter with it), so more than QUEUE_SIZE may be needed to fill it."""
    for i in range(QUEUE_SIZE * 4):
        try:
            site.render.request("big-stretch", f"Crowd {tag} {i}")
        except QueueFull:
            return
    pytest.fail("the queue never filled up")


def test_a_full_queue_retries_after_the_servers_delay(
    phone: BrowserContext, live_site: LiveSite, artifacts: Path
) -> None:
    watched = open_page(phone)
    page = watched.page
    # The queue is filled the moment the page's request leaves the browser, so no render ends
    # in between; should one end anyway (the worker never stops), the page is simply reloaded.
    for attempt in range(3):
        page.goto("/")
        pick(page, "Wake up")
        caption = f"Patience, grasshopper {attempt}"  # a new render each attempt
        page.locator("#caption-input").fill(caption)

        def fill_then_send(route: Route, attempt: int = attempt) -> None:
            fill_to_the_brim(live_site, str(attempt))
            route.continue_()

        page.route("**/api/renders", fill_then_send)
        with page.expect_response("**/api/renders") as answer:
            page.locator("#create-button").click()
        page.unroute("**/api/renders")
        if answer.value.status == 429:
            break
    else:
        pytest.fail("the full queue never answered 429")
    assert int(answer.value.headers["retry-after"]) >= 1
    # The page says so, counts down, and asks again by itself.
    expect(page.locator("#retry-message")).to_contain_text("Trying again in")
    expect(page.locator("#progress-status")).to_have_text("Waiting for a place in the queue…")
    shot(page, artifacts, "phone-queue-full")
    page.wait_for_url("**/r/*", timeout=RESULT_TIMEOUT_MS)
    expect(page.locator("figure.media video.media-video")).to_have_attribute(
        "aria-label", caption, timeout=RESULT_TIMEOUT_MS
    )
    watched.assert_clean(allow=("429",))
