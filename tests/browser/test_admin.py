"""The admin driven in Chromium: log in, curate the gallery, reorder it in place, take a render
down, edit the word list, upload a template (a draft, prepared in the background), drag its text
box on the live preview, publish it (not without a credit line), and the renders list on a
390 px phone. The site runs over a copy of one
demo template (the admin writes template folders); screenshots go to test-artifacts/admin/."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, Request, expect

from loopmark import create_app
from loopmark.composition import Services, setup_backends
from loopmark.records.renders import RenderStatus
from loopmark.service.passwords import hash_password
from loopmark.service.render_service import media_keys
from loopmark.web.context import EXTENSION
from loopmark.web.server import create_server
from tests.browser.conftest import (
    DESKTOP,
    PHONE,
    SERVER_STOP_SECONDS,
    LiveSite,
    new_context,
    open_page,
)
from tests.paths import DEMO_TEMPLATES, REPO

ARTIFACTS = REPO / "test-artifacts" / "admin"
TEMPLATE = "big-stretch"
NAME, PASSWORD = "ana", "a long admin passphrase"
RENDER_DONE_SECONDS = 180.0
PHONE_390 = {**PHONE, "viewport": {"width": 390, "height": 844}}


@pytest.fixture(scope="module")
def admin_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    data = tmp_path_factory.mktemp("admin-site")
    shutil.copytree(DEMO_TEMPLATES / TEMPLATE, data / "templates" / TEMPLATE)
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "admin-browser-test-only",
            "LOOPMARK_DATA_DIR": str(data),
            "LOOPMARK_TEMPLATES_DIR": str(data / "templates"),
            "LOOPMARK_STORAGE": f"file://{data / 'media'}",
            "LOOPMARK_RECORDS": f"sqlite:///{data / 'loopmark.db'}",
            "LOOPMARK_DISPATCH": "local",
            "LOOPMARK_MEDIA_BASE_URL": "",
            "LOOPMARK_RENDER_CONCURRENCY": "1",
            "LOOPMARK_JSON_LOGS": "off",
            "COMPRESS_STREAMS": False,
        }
    )
    services: Services = app.extensions[EXTENSION]
    setup_backends(services.settings)
    services.users.records.put(NAME, hash_password(PASSWORD))
    server = create_server(app, "127.0.0.1", 0, threads=8)
    thread = threading.Thread(target=server.run, name="admin-site", daemon=True)
    thread.start()
    site = LiveSite(f"http://127.0.0.1:{server.effective_port}", app, server)
    try:
        yield site
    finally:
        server.close()
        thread.join(SERVER_STOP_SECONDS)
        services.close()


@pytest.fixture
def context(browser: Browser, admin_site: LiveSite) -> Iterator[BrowserContext]:
    context = new_context(browser, admin_site, **DESKTOP)
    yield context
    context.close()


@pytest.fixture(scope="module")
def shots() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def api(site: LiveSite, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        site.url + path, data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.load(exc)


def render(site: LiveSite, caption: str) -> str:
    status, body = api(site, "/api/renders", {"template": TEMPLATE, "caption": caption})
    assert status in (200, 202), body
    deadline = time.monotonic() + RENDER_DONE_SECONDS
    while status != 200:
        assert time.monotonic() < deadline, body
        time.sleep(0.2)
        status, body = api(site, f"/api/renders/{body['key']}")
        assert status in (200, 202), body
    return str(body["key"])


def log_in(page: Page, path: str = "/admin/") -> None:
    page.goto(path)
    expect(page).to_have_url(re.compile(r"/admin/login\?next="))
    page.get_by_label("Name").fill(NAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def gallery_order(app: Flask) -> list[str]:
    return [entry.key for entry in app.extensions[EXTENSION].gallery.entries()]


def test_curate_reorder_and_take_down(
    admin_site: LiveSite, context: BrowserContext, shots: Path
) -> None:
    first = render(admin_site, "Stretch mode: ON")
    second = render(admin_site, "Weekend, here I come")
    watched = open_page(context)
    page = watched.page
    log_in(page)
    assert page.url.endswith("/admin/")
    rows = page.locator("table.renders tbody tr")
    expect(rows).to_have_count(2)
    page.screenshot(path=str(shots / "renders.png"), full_page=True)

    for caption in ("Stretch mode: ON", "Weekend, here I come"):
        row = rows.filter(has_text=caption)
        row.get_by_role("button", name="Add to gallery").click()
        expect(page.locator(".flash-ok")).to_contain_text(caption)
    assert gallery_order(admin_site.app) == [first, second]

    page.get_by_role("link", name="Gallery").click()
    entries = page.locator(".gallery-entry")
    expect(entries).to_have_count(2)
    page.evaluate("window.stillTheSamePage = true")
    page.get_by_role("button", name="Move “Weekend, here I come” up").click()
    expect(entries.first).to_contain_text("Weekend, here I come")
    expect(entries.first.locator(".position")).to_have_text("1")
    assert gallery_order(admin_site.app) == [second, first]
    # Moved in place (fetch), not by a reload; the buttons follow the new order.
    assert page.evaluate("window.stillTheSamePage") is True
    expect(page.get_by_role("button", name="Move “Weekend, here I come” up")).to_be_disabled()
    expect(page.get_by_role("button", name="Move “Stretch mode: ON” up")).to_be_enabled()
    expect(page.locator("#gallery-status")).to_have_text("Moved to position 1.")
    page.screenshot(path=str(shots / "gallery.png"), full_page=True)

    entries.filter(has_text="Stretch mode: ON").get_by_role("link").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Stretch mode: ON")
    page.screenshot(path=str(shots / "render.png"), full_page=True)
    page.get_by_label("Reason").fill("reported by a visitor")
    page.get_by_role("button", name="Take down for good").click()
    expect(page.locator(".blocked")).to_contain_text("reported by a visitor")
    page.screenshot(path=str(shots / "taken-down.png"), full_page=True)

    render_service = admin_site.render
    record = render_service.records.get(first)
    assert record is not None and record.status == RenderStatus.BLOCKED
    blobs = render_service.blobs
    for storage_key in media_keys(first).values():
        assert not blobs.path(storage_key).exists()  # type: ignore[attr-defined]
    status, _ = api(
        admin_site, "/api/renders", {"template": TEMPLATE, "caption": "Stretch mode: ON"}
    )
    assert status == 410
    assert gallery_order(admin_site.app) == [second]
    watched.assert_clean()


def test_edit_the_word_list(admin_site: LiveSite, context: BrowserContext, shots: Path) -> None:
    watched = open_page(context)
    page = watched.page
    log_in(page, "/admin/words")
    caption = {"template": TEMPLATE, "caption": "Decaf forever"}
    assert api(admin_site, "/api/captions/check", caption)[0] == 200
    page.locator("form[action$='/words/add'] select").select_option("banned")
    page.get_by_label("Word", exact=True).fill("decaf")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("#list-banned")).to_contain_text("decaf")
    assert api(admin_site, "/api/captions/check", caption)[0] == 422
    page.screenshot(path=str(shots / "words.png"), full_page=True)
    page.get_by_role("button", name="Remove decaf").click()
    expect(page.locator("#list-banned")).not_to_contain_text("decaf")
    assert api(admin_site, "/api/captions/check", caption)[0] == 200
    watched.assert_clean()


def test_add_a_template_as_a_draft_tune_and_publish_it(
    admin_site: LiveSite, context: BrowserContext, shots: Path, clip: Path
) -> None:
    watched = open_page(context)
    page = watched.page
    log_in(page, "/admin/templates")
    page.get_by_role("link", name="Upload a new loop").click()
    # A refusal comes back as JSON and is marked on its field, without leaving the page.
    page.get_by_label("Id (lowercase").fill(TEMPLATE)
    page.get_by_label("Loop video").set_input_files(str(clip))
    page.get_by_role("button", name="Upload and prepare").click()
    expect(page.get_by_label("Id (lowercase")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#template_id-error")).to_contain_text("already exists")
    expect(page.locator(".upload-status")).to_have_text("Not uploaded: see the marked fields.")
    page.get_by_label("Id (lowercase").fill("bunny-hop")
    page.get_by_label("Name", exact=True).fill("Bunny hop")
    page.get_by_label("Loop video").set_input_files(str(clip))
    page.get_by_label("Start (s)").fill("2")
    page.get_by_label("Duration (s)").fill("1")
    page.get_by_label("Width (px)").fill("240")
    # The upload's progress is shown while it is sent (XHR); the page then waits for the
    # background preparation and opens the editor by itself.
    with page.expect_request(
        lambda r: r.url.endswith("/admin/templates/new") and r.method == "POST"
    ):
        page.get_by_role("button", name="Upload and prepare").click()
    expect(page).to_have_url(re.compile(r"/admin/templates/bunny-hop$"))
    expect(page.locator(".flash-ok")).to_contain_text("Uploaded Bunny hop")
    expect(page.locator("[data-admin-preview]")).to_be_visible(timeout=120_000)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Draft")
    status, templates = api(admin_site, "/api/templates")
    assert "bunny-hop" not in {t["id"] for t in templates}
    assert api(admin_site, "/api/renders", {"template": "bunny-hop", "caption": "Hi"})[0] in (
        404,
        422,
    )

    # The live preview draws the sample caption in the chosen colour over the loop.
    canvas = page.locator("canvas.preview-text")
    page.get_by_label("Sample caption").fill("HOP HOP HOP")
    page.get_by_label("Text colour").fill("#ff0000")
    page.get_by_label("Outline width").fill("0")
    red = count_pixels(page, (255, 0, 0))
    assert red > 50
    page.get_by_label("Text colour").fill("#00ff00")
    assert count_pixels(page, (0, 255, 0)) > 50
    assert count_pixels(page, (255, 0, 0)) == 0
    expect(canvas).to_be_visible()

    # The text box is dragged and resized on the preview; the numbers follow.
    drag_the_text_box(page)

    # Publishing without a credit line is refused, next to the credit field.
    page.get_by_role("button", name="Publish", exact=True).click()
    credit = page.get_by_label("Credit")
    expect(credit).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#credit-error")).to_contain_text("credit line")
    page.screenshot(path=str(shots / "template-publish-refused.png"), full_page=True)
    assert "bunny-hop" not in {t["id"] for t in api(admin_site, "/api/templates")[1]}

    # A box past the bottom is refused in plain words, the field marked.
    page.get_by_label("Box height").fill("400")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_label("Box height")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#box_h-error")).to_contain_text(
        "The text box goes past the bottom edge of the 240 × 136 loop"
    )
    page.get_by_label("Box height").fill("30")
    page.get_by_label("Box y").fill("20")
    page.get_by_label("Text colour").fill("#00ff00")
    page.get_by_label("Credit").fill("Big Buck Bunny © Blender Foundation, CC-BY 3.0")
    page.get_by_label("Plays").select_option("reverse")
    page.screenshot(path=str(shots / "template-edit.png"), full_page=True)
    page.get_by_role("button", name="Save and publish").click()
    # Reversing changes the frames: prepared in the background before anything is written,
    # then the page opens the editor again by itself.
    expect(page.locator(".flash-ok")).to_contain_text("Preparing the new frames of Bunny hop")
    expect(page.locator("[data-admin-preview]")).to_be_visible(timeout=120_000)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Published")
    expect(page.get_by_label("Plays")).to_have_value("reverse")

    status, templates = api(admin_site, "/api/templates")
    listed = {t["id"]: t for t in templates}
    assert status == 200 and "bunny-hop" in listed
    assert listed["bunny-hop"]["text"]["fill"] == "#00ff00"
    assert listed["bunny-hop"]["text"]["box"][1] == 20
    page.get_by_role("link", name="Templates", exact=True).click()
    page.screenshot(path=str(shots / "templates.png"), full_page=True)
    watched.assert_clean(allow=("status of 422",))  # the three refusals above


def test_drag_the_text_box_on_a_phone_with_reduced_motion(
    admin_site: LiveSite, browser: Browser, shots: Path
) -> None:
    context = new_context(browser, admin_site, reduced_motion="reduce", **PHONE_390)
    try:
        watched = open_page(context)
        page = watched.page
        log_in(page, f"/admin/templates/{TEMPLATE}")
        # Prepared in the background first when no earlier test needed it.
        expect(page.locator("[data-admin-preview]")).to_be_visible(timeout=300_000)
        # Reduced motion: the preview loop does not play.
        assert page.evaluate("document.querySelector('[data-admin-preview] video').paused")
        drag_the_text_box(page)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        page.screenshot(path=str(shots / "template-edit-phone.png"), full_page=True)
        watched.assert_clean()
    finally:
        context.close()


UPLOAD_WATCH = """() => {
  const bar = document.querySelector(".upload-progress progress");
  const status = document.querySelector(".upload-status");
  new MutationObserver(() => {
    sessionStorage.progress = String(bar.value);
    sessionStorage.status = status.textContent;
  }).observe(document.querySelector(".upload-progress"),
             {attributes: true, childList: true, characterData: true, subtree: true});
}"""


def is_upload(request: Request) -> bool:
    return request.url.endswith("/admin/templates/new") and request.method == "POST"


def drag_the_text_box(page: Page) -> None:
    """Move the box with the pointer, resize it from its corner, nudge it with the keyboard."""
    preview = page.locator("[data-admin-preview]")
    width = int(preview.get_attribute("data-width") or 0)
    handle = page.locator(".box-handle")
    expect(handle).to_be_visible()
    numbers = ("Box x", "Box y", "Box width", "Box height")

    def box() -> list[int]:
        return [int(page.get_by_label(name, exact=True).input_value()) for name in numbers]

    page.get_by_label("Box x", exact=True).fill("20")
    page.get_by_label("Box y", exact=True).fill("60")
    page.get_by_label("Box width", exact=True).fill("120")
    page.get_by_label("Box height", exact=True).fill("40")
    handle.scroll_into_view_if_needed()  # filling the numbers scrolled to them on a phone
    bounds = preview.bounding_box()
    assert bounds is not None
    scale = bounds["width"] / width  # screen pixels per output pixel
    start = handle.bounding_box()
    assert start is not None
    # Move: 30 output pixels right, 10 up, by the middle of the box.
    x, y = start["x"] + start["width"] / 2, start["y"] + start["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 15 * scale, y - 5 * scale, steps=3)
    page.mouse.move(x + 30 * scale, y - 10 * scale, steps=3)
    page.mouse.up()
    moved = box()
    assert abs(moved[0] - 50) <= 1 and abs(moved[1] - 50) <= 1, moved
    assert moved[2:] == [120, 40]
    # Resize from the corner: 40 wider, 20 taller.
    corner = page.locator(".box-corner").bounding_box()
    assert corner is not None
    cx, cy = corner["x"] + corner["width"] / 2, corner["y"] + corner["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 40 * scale, cy + 20 * scale, steps=4)
    page.mouse.up()
    resized = box()
    assert resized[:2] == moved[:2]
    assert abs(resized[2] - 160) <= 1 and abs(resized[3] - 60) <= 1, resized
    # Dragged past the right edge, it stops at the edge.
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 400 * scale, cy, steps=3)
    page.mouse.up()
    assert box()[0] + box()[2] == width
    # The keyboard nudges it (arrows move, Shift+arrows resize).
    handle.focus()
    before = box()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Shift+ArrowUp")
    after = box()
    assert after == [before[0] - 2, before[1], before[2], before[3] - 1], (before, after)
    # The dashed outline is drawn where the numbers say.
    drawn = page.evaluate(
        """() => {
          const canvas = document.querySelector("canvas.preview-box");
          const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
          let minX = canvas.width, maxX = -1;
          for (let y = 0; y < canvas.height; y++)
            for (let x = 0; x < canvas.width; x++)
              if (data[(y * canvas.width + x) * 4 + 3] > 0) {
                minX = Math.min(minX, x);
                maxX = Math.max(maxX, x);
              }
          return [minX, maxX];
        }"""
    )
    assert abs(drawn[0] - after[0]) <= 2 and abs(drawn[1] - (after[0] + after[2] - 1)) <= 2, drawn


def test_renders_list_fits_a_phone(admin_site: LiveSite, browser: Browser, shots: Path) -> None:
    render(admin_site, "A caption long enough to wrap on a narrow phone screen")
    context = new_context(browser, admin_site, **PHONE_390)
    try:
        watched = open_page(context)
        page = watched.page
        log_in(page)
        expect(page.locator("table.renders tbody tr").first).to_be_visible()
        for path in ("/admin/", "/admin/gallery", "/admin/templates", "/admin/words"):
            page.goto(path)
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, (path, overflow)
        page.goto("/admin/")
        row = page.locator("table.renders tbody tr").first
        button = row.get_by_role("button")
        expect(button).to_be_visible()
        box = button.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 390
        page.screenshot(path=str(shots / "renders-phone.png"), full_page=True)
        watched.assert_clean()
    finally:
        context.close()


def count_pixels(page: Page, rgb: tuple[int, int, int]) -> int:
    """Opaque pixels of the preview's text canvas close to ``rgb``."""
    return int(
        page.evaluate(
            """([r, g, b]) => {
              const canvas = document.querySelector("canvas.preview-text");
              const ctx = canvas.getContext("2d");
              const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
              let n = 0;
              for (let i = 0; i < data.length; i += 4) {
                if (data[i + 3] > 250 && Math.abs(data[i] - r) < 8 && Math.abs(data[i + 1] - g) < 8
                    && Math.abs(data[i + 2] - b) < 8) n++;
              }
              return n;
            }""",
            list(rgb),
        )
    )


def test_the_gif_settings_refuse_beside_their_fields_and_save(
    admin_site: LiveSite, context: BrowserContext, shots: Path
) -> None:
    """Issue 12: the tuned stabilise distance as the placeholder, an override out of range
    refused next to its field, and a GIF size budget typed in MB saved to template.toml."""
    watched = open_page(context)
    page = watched.page
    log_in(page, f"/admin/templates/{TEMPLATE}")
    expect(page.locator("[data-admin-preview]")).to_be_visible(timeout=120_000)
    services: Services = admin_site.app.extensions[EXTENSION]
    catalog = services.templates
    prepared = catalog.prepared(catalog.get(TEMPLATE, enabled_only=False))
    tuned = json.loads((prepared.folder / "meta.json").read_text())["stabilise_distance"]
    distance = page.get_by_label("Stabilise distance")
    budget = page.get_by_label("GIF size budget")
    expect(distance).to_have_attribute("placeholder", f"{tuned:g} (automatic)")
    expect(budget).to_have_attribute("placeholder", "8 MB (the brand's)")
    # Palette spans: a checkbox named by its label, off for this template, its trade described.
    spans = page.get_by_label("Try a palette per span of frames")
    expect(spans).not_to_be_checked()
    expect(spans).to_have_attribute("aria-describedby", "palette_spans-hint palette_spans-error")
    expect(page.locator("#palette_spans-hint")).to_contain_text("a second or two longer")
    page.locator("fieldset.group", has=distance).scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "template-gif-settings.png"), full_page=True)

    distance.fill("40")
    budget.fill("8")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(distance).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#stabilise_distance-error")).to_contain_text(
        "The stabilise distance goes from 0 to 32; leave it empty to have it tuned automatically."
    )
    expect(budget).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#max_gif_bytes-error")).to_contain_text("did you mean 8 MB?")
    page.screenshot(path=str(shots / "template-gif-settings-refused.png"), full_page=True)

    distance.fill("")
    budget.fill("5 MB")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".flash-ok")).to_contain_text("Saved")
    expect(budget).to_have_value("5 MB")
    toml = (catalog.get(TEMPLATE, enabled_only=False).folder / "template.toml").read_text()
    assert "max_gif_bytes = 5000000" in toml and "stabilise_distance" not in toml
    page.get_by_label("GIF size budget").fill("")  # back to the brand's for the other tests
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".flash-ok")).to_contain_text("Saved")
    watched.assert_clean(allow=("status of 422",))
