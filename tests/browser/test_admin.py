"""The admin driven in Chromium: log in, curate the gallery, reorder it, take a render down, edit
the word list, add a template and tune it with the live preview. The site runs over a copy of one
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
from playwright.sync_api import Browser, BrowserContext, Page, expect

from loopmark import create_app
from loopmark.composition import Services, setup_backends
from loopmark.records.renders import RenderStatus
from loopmark.service.passwords import hash_password
from loopmark.service.render_service import media_keys
from loopmark.web.context import EXTENSION
from loopmark.web.server import create_server
from tests.browser.conftest import DESKTOP, SERVER_STOP_SECONDS, LiveSite, new_context, open_page
from tests.paths import DEMO_TEMPLATES, REPO

ARTIFACTS = REPO / "test-artifacts" / "admin"
TEMPLATE = "big-stretch"
NAME, PASSWORD = "ana", "a long admin passphrase"
RENDER_DONE_SECONDS = 180.0


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
    page.get_by_role("button", name="Move “Weekend, here I come” up").click()
    expect(entries.first).to_contain_text("Weekend, here I come")
    assert gallery_order(admin_site.app) == [second, first]
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


def test_add_a_template_and_tune_it(
    admin_site: LiveSite, context: BrowserContext, shots: Path, clip: Path
) -> None:
    watched = open_page(context)
    page = watched.page
    log_in(page, "/admin/templates")
    page.get_by_role("link", name="Upload a new loop").click()
    page.get_by_label("Id (lowercase").fill("bunny-hop")
    page.get_by_label("Name", exact=True).fill("Bunny hop")
    page.get_by_label("Loop video").set_input_files(str(clip))
    page.get_by_label("Start (s)").fill("2")
    page.get_by_label("Duration (s)").fill("1")
    page.get_by_label("Width (px)").fill("240")
    page.get_by_role("button", name="Upload and prepare").click()
    expect(page.locator(".flash-ok")).to_contain_text("Added Bunny hop", timeout=120_000)
    assert page.url.endswith("/admin/templates/bunny-hop")

    # The live preview draws the sample caption in the chosen colour over the poster.
    canvas = page.locator("canvas.preview-text")
    expect(page.locator("[data-admin-preview] img")).to_be_visible()
    page.get_by_label("Sample caption").fill("HOP HOP HOP")
    page.get_by_label("Text colour").fill("#ff0000")
    page.get_by_label("Outline width").fill("0")
    red = count_pixels(page, (255, 0, 0))
    assert red > 50
    page.get_by_label("Text colour").fill("#00ff00")
    assert count_pixels(page, (0, 255, 0)) > 50
    assert count_pixels(page, (255, 0, 0)) == 0
    expect(canvas).to_be_visible()
    page.get_by_label("Box y").fill("20")
    page.screenshot(path=str(shots / "template-edit.png"), full_page=True)
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash-ok")).to_contain_text("Saved Bunny hop", timeout=120_000)

    status, templates = api(admin_site, "/api/templates")
    listed = {t["id"]: t for t in templates}
    assert status == 200 and "bunny-hop" in listed
    assert listed["bunny-hop"]["text"]["fill"] == "#00ff00"
    assert listed["bunny-hop"]["text"]["box"][1] == 20
    page.get_by_role("link", name="Templates", exact=True).click()
    page.screenshot(path=str(shots / "templates.png"), full_page=True)
    watched.assert_clean()


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
