"""Page weight and time to first animation of the share and result pages, in Debian's Chromium
under the issue's slow-4G emulation (150 ms RTT, 1.6 Mbps down, 750 kbps up), on a phone
viewport with the cache off. A measurement, not a test (never collected by pytest):

    python -m tests.browser.measure_page_weight [DATA_DIR]

Renders each demo template's first caption (cached in DATA_DIR between runs) and prints JSON:
bytes transferred per page (by file type) and seconds until the loop animates (the figure's
data-state turns "playing", or "gif" in the pages before the MP4 player).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from loopmark import create_app
from loopmark.composition import setup_backends
from loopmark.web.context import EXTENSION
from loopmark.web.server import create_server
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, PHONE, live_site_config

SLOW_4G = {"offline": False, "latency": 150, "downloadThroughput": 1_600_000 / 8}
SLOW_4G_UP = 750_000 / 8
ANIMATING = "figure.media[data-state=playing], figure.media[data-state=gif]"
TIMEOUT_MS = 180_000


def measure(data: Path) -> dict[str, Any]:
    app = create_app(live_site_config(data))
    services = app.extensions[EXTENSION]
    setup_backends(services.settings)
    server = create_server(app, "127.0.0.1", 0, threads=4)
    threading.Thread(target=server.run, daemon=True).start()
    base = f"http://127.0.0.1:{server.effective_port}"
    results: dict[str, Any] = {}
    try:
        keys = {}
        for template in services.templates.all():
            caption = template.captions[0] if template.captions else "Monday mood"
            outcome = services.render.request(template.id, caption, wait_s=300)
            assert outcome.status == "done", outcome
            keys[template.id] = outcome.key
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            for template_id, key in keys.items():
                for page_kind in ("s", "r"):
                    results[f"{template_id} /{page_kind}/"] = _one_page(
                        browser, f"{base}/{page_kind}/{key}"
                    )
            browser.close()
    finally:
        server.close()
        services.close()
    return results


def _one_page(browser: Any, url: str) -> dict[str, Any]:
    context = browser.new_context(**PHONE)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    cdp.send("Network.emulateNetworkConditions", {**SLOW_4G, "uploadThroughput": SLOW_4G_UP})
    urls: dict[str, str] = {}
    sizes: dict[str, int] = {}
    cdp.on(
        "Network.responseReceived", lambda p: urls.__setitem__(p["requestId"], p["response"]["url"])
    )
    cdp.on(
        "Network.loadingFinished",
        lambda p: sizes.__setitem__(p["requestId"], p["encodedDataLength"]),
    )
    started = time.monotonic()
    page.goto(url, wait_until="commit")
    page.wait_for_selector(ANIMATING, timeout=TIMEOUT_MS)
    animated = time.monotonic() - started
    page.wait_for_load_state("networkidle", timeout=TIMEOUT_MS)
    by_type: dict[str, int] = {}
    for request_id, size in sizes.items():
        name = urls.get(request_id, "").split("?")[0].rsplit("/", 1)[-1]
        kind = name.rsplit(".", 1)[-1] if "." in name else "html"
        by_type[kind] = by_type.get(kind, 0) + size
    context.close()
    return {
        "bytes": sum(sizes.values()),
        "first_animation_s": round(animated, 2),
        "by_type": by_type,
    }


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "var/measure-page-weight")
    print(json.dumps(measure(folder), indent=1))
