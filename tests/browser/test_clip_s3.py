""" "Use your own clip" in Chromium with S3 storage (moto's server on loopback): the page's CSP
lets the browser post the clip straight to the bucket (the presigned POST), and the clip comes
back as a GIF on the result page. The CSP is enforced here (no bypass), so a connect-src without
the bucket's origin fails this test.

CORS is not enforced here: moto (5.2) answers every request with its own permissive CORS
headers (flask-cors, echoing whatever Origin came) and applies no bucket CORS rule to a POST, so
this test cannot check the bucket's CORS rule; the CDK stack's rule is checked in tests/deploy.
"""

from __future__ import annotations

import re
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from loopmark import create_app
from loopmark.composition import setup_backends
from loopmark.web.context import EXTENSION
from loopmark.web.server import create_server
from tests.browser.conftest import DESKTOP, SERVER_STOP_SECONDS, live_site_config, open_page
from tests.browser.test_clip import CLIP, RESULT_TIMEOUT_MS
from tests.paths import DEMO_TEMPLATES

WARM_UP_SECONDS = 300
STYLE_TEMPLATE = "wake-up"  # one demo template is enough to give clips their style


@pytest.fixture
def s3_site(aws: str, tmp_path: Path) -> Iterator[str]:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / STYLE_TEMPLATE).symlink_to(DEMO_TEMPLATES / STYLE_TEMPLATE)
    config = live_site_config(tmp_path) | {
        "LOOPMARK_STORAGE": "s3://loopmark-browser/media",
        "LOOPMARK_TEMPLATES_DIR": str(templates),
    }
    app = create_app(config)
    setup_backends(app.extensions[EXTENSION].settings)
    server = create_server(app, "127.0.0.1", 0, threads=4)
    thread = threading.Thread(target=server.run, name="s3-site", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.effective_port}"
    try:
        urllib.request.urlopen(f"{url}/api/templates", timeout=WARM_UP_SECONDS).close()
        yield url
    finally:
        server.close()
        thread.join(SERVER_STOP_SECONDS)
        app.extensions[EXTENSION].close()


def test_the_clip_is_posted_to_the_bucket_under_the_pages_csp(
    browser: Browser, s3_site: str, aws: str
) -> None:
    context = browser.new_context(base_url=s3_site, **DESKTOP)  # type: ignore[arg-type]
    context.set_default_timeout(30_000)
    try:
        watched = open_page(context)
        page = watched.page
        home = page.goto("/")
        assert home is not None
        csp = home.headers["content-security-policy"]
        assert f"connect-src 'self' {aws};" in csp
        page.locator("#clip-file").set_input_files(str(CLIP))
        form = page.locator("#clip-form")
        expect(form).to_be_visible()
        page.wait_for_function("() => document.getElementById('clip-video').readyState >= 1")
        page.get_by_label("Caption (optional)").fill("Straight to the bucket")
        answers: list[Any] = []
        page.on("response", lambda r: answers.append(r) if r.url.startswith(aws) else None)
        with page.expect_request(lambda r: r.url.startswith(aws) and r.method == "POST") as sent:
            form.get_by_role("button", name="Create my GIF").click()
        assert sent.value.headers["content-type"].startswith("multipart/form-data")
        # The visitor's token never leaves for another origin.
        assert "x-loopmark-visitor" not in sent.value.headers
        page.wait_for_url(re.compile(r"/r/[a-z2-7]{24}$"), timeout=RESULT_TIMEOUT_MS)
        posted = [r for r in answers if r.request.method == "POST"]
        assert [r.status for r in posted] == [204]
        # moto's own CORS echoing the page's origin, not a bucket rule (see the docstring).
        assert posted[0].headers.get("access-control-allow-origin") == s3_site
        gif = page.locator("a[href$='.gif']").first
        expect(gif).to_be_attached(timeout=60_000)
        expect(page.locator(".result-caption")).to_contain_text("Straight to the bucket")
        watched.assert_clean()
    finally:
        context.close()
