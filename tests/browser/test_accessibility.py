"""axe-core over every public page, on a desktop and a phone: no violation at all on the pages
visitors see (minor ones included: Lighthouse's accessibility score counts them), no serious or
critical one in the admin.

axe-core comes from npm into tests/browser/.cache (``make test`` installs it: the Makefile's
$(AXE) rule). It is injected with the page's CSP bypassed (the site forbids inline script, and
axe is handed in as one); everything else is the real page.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from loopmark.service.passwords import hash_password
from loopmark.web.context import EXTENSION
from tests.browser.conftest import DESKTOP, PHONE, LiveSite, new_context, open_page
from tests.paths import REPO

AXE_JS = REPO / "tests" / "browser" / ".cache" / "node_modules" / "axe-core" / "axe.min.js"
FAILING_IMPACTS = ("serious", "critical")
EVERY_IMPACT = ("minor", "moderate", "serious", "critical")
RESULT_TIMEOUT_MS = 180_000
PAGES = ("/", "/gallery", "/credits", "/privacy", "/terms", "/no-such-page")


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE_JS.is_file():
        pytest.fail(f"{AXE_JS} is missing: `make test` installs axe-core from npm")
    return AXE_JS.read_text(encoding="utf-8")


@pytest.fixture(params=["desktop", "phone"])
def axe_context(
    request: pytest.FixtureRequest, browser: Browser, live_site: LiveSite
) -> Iterator[BrowserContext]:
    options: dict[str, Any] = dict(DESKTOP if request.param == "desktop" else PHONE)
    context = new_context(browser, live_site, bypass_csp=True, **options)
    yield context
    context.close()


def violations(
    page: Page, axe_source: str, impacts: tuple[str, ...] = FAILING_IMPACTS
) -> list[str]:
    """axe's violations of these impacts on the page as it stands, one line each."""
    page.evaluate("() => document.fonts.ready.then(() => true)")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_source)
    result = page.evaluate(
        """() => axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map(
              v => ({id: v.id, impact: v.impact, help: v.help,
                     targets: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))"""
    )
    return [
        f"{v['impact']} {v['id']}: {v['help']} at {json.dumps(v['targets'])}"
        for v in result
        if v["impact"] in impacts
    ]


def test_public_pages_have_no_violations(axe_context: BrowserContext, axe_source: str) -> None:
    page = open_page(axe_context).page
    found: dict[str, list[str]] = {}
    for path in PAGES:
        page.goto(path)
        found[path] = violations(page, axe_source, EVERY_IMPACT)
    # The creator's later steps: a loop picked, a caption refused (error state).
    page.goto("/")
    page.locator(".tpl-card", has_text="Wake up").click()
    expect(page.locator("#step-caption")).to_be_visible()
    found["/ caption step"] = violations(page, axe_source, EVERY_IMPACT)
    page.locator("#caption-input").fill("what the fuck")
    expect(page.locator("#caption-error")).to_be_visible()
    found["/ refused caption"] = violations(page, axe_source, EVERY_IMPACT)
    assert {path: lines for path, lines in found.items() if lines} == {}


def test_result_and_share_pages_have_no_violations(
    axe_context: BrowserContext, axe_source: str, live_site: LiveSite
) -> None:
    key = live_site.render.request("big-stretch", "Accessible loops").key
    page = open_page(axe_context).page
    found: dict[str, list[str]] = {}
    for path in (f"/r/{key}", f"/s/{key}", f"/s/{key}/report", "/s/" + "a" * 24):
        page.goto(path)
        if path.startswith(("/r/", f"/s/{key}")) and not path.endswith("/report"):
            expect(page.locator("figure.media")).to_be_visible(timeout=RESULT_TIMEOUT_MS)
        found[path] = violations(page, axe_source, EVERY_IMPACT)
    assert {path: lines for path, lines in found.items() if lines} == {}


ADMIN_NAME, ADMIN_PASSWORD = "axe", "an accessible admin passphrase"
ADMIN_PAGES = ("/admin/", "/admin/gallery", "/admin/words", "/admin/templates", "/admin/stats")


def test_admin_pages_have_no_serious_violations(
    axe_context: BrowserContext, axe_source: str, live_site: LiveSite
) -> None:
    services = live_site.app.extensions[EXTENSION]
    services.users.records.put(ADMIN_NAME, hash_password(ADMIN_PASSWORD))
    key = live_site.render.request("wake-up", "Admin's view").key
    deadline = time.monotonic() + RESULT_TIMEOUT_MS / 1000
    while (record := services.render.record(key)) is None or record.status != "done":
        assert time.monotonic() < deadline, f"render {key} not done"
        time.sleep(0.1)
    if key not in {entry.key for entry in services.gallery.entries()}:
        services.gallery.add(record)  # the gallery page lists an entry
    services.reports.submit(key, "a report for the renders view")
    page = open_page(axe_context).page
    found: dict[str, list[str]] = {}
    page.goto("/admin/login")
    found["/admin/login"] = violations(page, axe_source)
    page.get_by_label("Name").fill(ADMIN_NAME)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    paths = (*ADMIN_PAGES, f"/admin/renders/{key}", "/admin/templates/wake-up")
    for path in paths:
        page.goto(path)
        found[path] = violations(page, axe_source)
    assert {path: lines for path, lines in found.items() if lines} == {}
