"""The gallery in a real browser: entries over GraphQL in batches sized to the screen, posters
first and then the loops, more as you scroll, on a desktop and a phone; reduced motion keeps
the posters; the page's HTML holds no media at all."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, Request, expect

from loopmark.web.context import services
from tests.browser.conftest import QUEUE_SIZE, LiveSite, open_page

# More than a desktop loads before the visitor scrolls (a screenful and a row more, then one
# batch ahead), so scrolling must fetch again. A render takes about 0.5 s on the one worker.
ENTRIES = 80
TEMPLATES = ("wake-up", "big-stretch")  # head-scratch takes its preset captions only
RENDER_SECONDS = 180.0  # one render's generous bound on a shared machine
SUBMIT_CHUNK = QUEUE_SIZE - 4  # renders queued at once, below the site's queue bound
POSTER = re.compile(r"/r/[a-z2-7]{2}/([a-z2-7]{24})/poster\.jpg$")
LOOP = re.compile(r"/r/[a-z2-7]{2}/([a-z2-7]{24})/[^/]+\.mp4$")


@pytest.fixture(scope="module")
def curated(live_site: LiveSite) -> list[str]:
    """ENTRIES renders curated into the live site's gallery, and nothing else (an entry an
    earlier test on the same live site curated is taken out); their keys in gallery order."""
    wanted = [(TEMPLATES[n % len(TEMPLATES)], f"Gallery wall {n}") for n in range(ENTRIES)]
    keys: list[str] = []
    for start in range(0, ENTRIES, SUBMIT_CHUNK):
        chunk = wanted[start : start + SUBMIT_CHUNK]
        for template, caption in chunk:
            live_site.render.request(template, caption)
        for template, caption in chunk:
            outcome = live_site.render.request(template, caption, wait_s=RENDER_SECONDS)
            assert outcome.status == "done", outcome
            keys.append(outcome.key)
    gallery = services(live_site.app).gallery
    for entry in gallery.entries():
        if entry.key not in keys:
            gallery.remove(entry.key)
    for key in keys:
        record = live_site.render.records.get(key)
        assert record is not None
        gallery.add(record)
    listed = [entry.key for entry in gallery.entries()]
    assert sorted(listed) == sorted(keys)
    return listed


def graphql_requests(page: Page) -> list[dict[str, object]]:
    """The variables of every /graphql request the page makes, in order."""
    sent: list[dict[str, object]] = []

    def seen(request: Request) -> None:
        if request.url.endswith("/graphql"):
            assert request.method == "POST"
            body = request.post_data_json
            assert body is not None
            sent.append(body["variables"])

    page.on("request", seen)
    return sent


def media_order(page: Page) -> list[tuple[str, str]]:
    """Records (kind, key) of every poster and loop the page requests, in order."""
    order: list[tuple[str, str]] = []

    def seen(request: Request) -> None:
        for kind, pattern in (("poster", POSTER), ("loop", LOOP)):
            match = pattern.search(request.url)
            if match:
                order.append((kind, match.group(1)))
        if urlsplit(request.url).path.endswith(".gif"):
            order.append(("gif", request.url))  # never: the wall shows posters and MP4 loops

    page.on("request", seen)
    return order


def card_keys(page: Page) -> list[str]:
    # What the script returns: Playwright types every evaluation as Any.
    keys: list[str] = page.eval_on_selector_all(
        ".gallery-item", "cards => cards.map(c => c.dataset.key)"
    )
    return keys


def batch_facts(page: Page) -> dict[str, int]:
    # What the script returns: Playwright types every evaluation as Any.
    facts: dict[str, int] = page.evaluate(
        """() => {
            const grid = document.getElementById('gallery-grid');
            const tracks = getComputedStyle(grid).gridTemplateColumns.trim().split(/\\s+/);
            return {columns: tracks.length, batch: Number(grid.dataset.lastBatch),
                    cards: grid.querySelectorAll('.gallery-item').length};
        }"""
    )
    return facts


def scroll_to_the_end(page: Page) -> None:
    """Scroll to the bottom, each time waiting for the next batch, until the last one landed."""
    for _ in range(ENTRIES):  # a batch holds at least one entry
        if page.get_attribute("#gallery-grid", "data-complete") == "1":
            return
        count = batch_facts(page)["cards"]
        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        page.wait_for_function(
            "n => document.getElementById('gallery-grid').dataset.complete === '1'"
            " || document.querySelectorAll('.gallery-item').length > n",
            arg=count,
        )
    raise AssertionError("the gallery never said it was complete")


def check_gallery(page: Page, curated: list[str], width: int) -> dict[str, int]:
    order = media_order(page)
    asked = graphql_requests(page)
    response = page.goto("/gallery")
    assert response is not None and response.status == 200
    cards = page.locator(".gallery-item")
    expect(cards.first).to_be_visible()
    expect(page.locator("#gallery-grid")).to_have_attribute("aria-busy", "false")
    first = batch_facts(page)
    # The first batch: whole rows of the columns that fit, enough rows to fill the screen.
    assert asked[0] == {"first": asked[0]["first"], "after": None}
    batch = int(str(asked[0]["first"]))
    assert batch % first["columns"] == 0
    assert batch >= 2 * first["columns"]
    assert card_keys(page)[:batch] == curated[:batch]
    page.wait_for_timeout(1500)  # whatever loads without scrolling has landed by now
    assert batch_facts(page)["cards"] < len(curated)  # the rest waits for a scroll
    before_scrolling = len(asked)

    # The first card: its poster (the caption as alt text), then its loop, muted and playing.
    card = cards.first
    key = curated[0]
    # Poster (alt) or loop (aria-label): the caption names the card's link either way.
    named = card.get_by_role("link", name="Gallery wall 0", exact=True)
    expect(named).to_have_count(1)
    loop = card.locator("video.gallery-loop")
    expect(loop).to_have_count(1, timeout=60_000)
    expect(loop).to_have_attribute("aria-label", "Gallery wall 0")
    expect(loop).not_to_have_attribute("role", "img")  # not an ARIA role a <video> may take
    expect(named).to_have_count(1)
    expect(loop).to_have_attribute("src", LOOP)
    page.wait_for_function(
        "() => { const v = document.querySelector('.gallery-item video.gallery-loop');"
        " return v && v.muted && v.loop && !v.paused && v.currentTime > 0; }"
    )
    assert loop.evaluate("v => v.playsInline && v.poster.endsWith('.jpg')")
    assert ("poster", key) in order and ("loop", key) in order
    assert order.index(("poster", key)) < order.index(("loop", key))
    for kind, loop_key in order:  # no loop is ever fetched before its poster
        if kind == "loop":
            assert order.index(("poster", loop_key)) < order.index((kind, loop_key))

    # Scrolling fetches the rest, in order and without repeats, then stops asking.
    scroll_to_the_end(page)
    assert [url for kind, url in order if kind == "gif"] == []
    keys = card_keys(page)
    assert keys[: len(curated)] == curated
    assert len(keys) == len(set(keys))
    assert len(asked) > before_scrolling
    assert all(variables["after"] for variables in asked[1:])
    first["batch"] = batch
    expect(page.locator("#gallery-more")).to_be_hidden()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    return first


def test_initial_html_holds_no_media(live_site: LiveSite, curated: list[str]) -> None:
    with urllib.request.urlopen(f"{live_site.url}/gallery", timeout=30) as response:
        html = response.read().decode()
    section = html[html.index('<section class="gallery">') : html.index("</section>")]
    assert "<img" not in section and "<video" not in section and "<source" not in section
    assert re.search(r'<ul class="gallery-grid" id="gallery-grid"[^>]*></ul>', section)
    assert not any(key in html for key in curated)


def test_desktop_and_phone_load_a_screenful_then_more_as_they_scroll(
    desktop: BrowserContext, phone: BrowserContext, curated: list[str], artifacts: Path
) -> None:
    wide = open_page(desktop)
    wide_batch = check_gallery(wide.page, curated, 1280)
    wide.page.screenshot(path=str(artifacts / "gallery-desktop.png"))
    wide.assert_clean()

    narrow = open_page(phone)
    phone_batch = check_gallery(narrow.page, curated, 360)
    narrow.page.screenshot(path=str(artifacts / "gallery-phone.png"))
    narrow.assert_clean()

    # Batches follow the columns that fit: fewer on a phone than on a desktop.
    assert phone_batch["columns"] < wide_batch["columns"]
    assert phone_batch["batch"] < wide_batch["batch"]


def test_reduced_motion_keeps_the_posters(
    reduced_motion: BrowserContext, curated: list[str]
) -> None:
    watched = open_page(reduced_motion)
    page = watched.page
    order = media_order(page)
    page.goto("/gallery")
    poster = page.locator(".gallery-item img.gallery-poster").first
    expect(poster).to_have_attribute("src", POSTER)
    page.wait_for_function(
        "() => { const i = document.querySelector('.gallery-item img.gallery-poster');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    page.wait_for_timeout(1000)  # a loop would have been asked for by now
    assert page.locator("video").count() == 0
    assert [kind for kind, _ in order if kind == "loop"] == []
    watched.assert_clean()
