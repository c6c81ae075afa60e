"""The result page of a render whose GIF is stored but whose MP4 is not yet: the poster and the
GIF download at once, then the video plays when the MP4 lands (no reload)."""

from __future__ import annotations

import uuid

from playwright.sync_api import BrowserContext, expect

from loopmark.renderer.render import render_key
from loopmark.service.render_service import MEDIA_TYPES, media_keys
from tests.browser.conftest import LiveSite, open_page

LEASE_S = 600.0
WAIT_S = 120.0  # a bound against hangs, not a timing assertion


def test_the_result_page_plays_the_mp4_when_it_lands(
    desktop: BrowserContext, live_site: LiveSite
) -> None:
    service = live_site.render
    # Real media to copy: a render done the usual way.
    source = service.request("wake-up", f"Made whole {uuid.uuid4().hex[:6]}", wait_s=WAIT_S)
    assert source.status == "done", source
    caption = f"Video later {uuid.uuid4().hex[:6]}"
    key = render_key(service.catalog.get("wake-up"), caption)
    assert service.records.claim_lease(
        key, owner="slow-worker", template_id="wake-up", caption=caption, lease_seconds=LEASE_S
    )
    media: dict[str, object] = {"width": 480, "height": 270, "frames": 26, "bytes": 1}

    def land(kind: str) -> None:
        payload = service.blobs.get(media_keys(source.key)[kind])
        service.blobs.put(media_keys(key)[kind], payload, content_type=MEDIA_TYPES[kind])
        media[kind] = media_keys(key)[kind]
        assert service.records.record_renditions(key, owner="slow-worker", media=dict(media))

    land("gif")
    land("poster")
    watched = open_page(desktop)
    page = watched.page
    page.goto(f"/r/{key}")
    figure = page.locator("figure.media")
    expect(page.locator(".result-title")).to_have_text("Your GIF is ready!")
    expect(figure).to_have_attribute("data-state", "waiting")
    expect(page.locator(".media-status")).to_contain_text("on its way")
    video = page.locator("figure.media video.media-video")
    assert video.evaluate("v => v.poster.endsWith('/poster.jpg') && !v.querySelector('source')")
    expect(page.locator("a.download-mp4")).to_be_hidden()
    with page.expect_download() as gif:
        page.locator("a.download-gif").click()
    assert gif.value.suggested_filename.endswith(f"{key}.gif")

    land("mp4")  # the page is polling: it brings the video in
    expect(figure).to_have_attribute("data-state", "playing", timeout=30_000)
    assert video.evaluate("v => v.currentSrc.endsWith('/loop.mp4') && !v.paused")
    expect(page.locator("a.download-mp4")).to_be_visible()
    assert page.url.endswith(f"/r/{key}")  # no reload
    watched.assert_clean()


# A copy of the page's loop, put in by script, set up in the same task as its <source> went in:
# the browser has then begun choosing a source (networkState NETWORK_NO_SOURCE, no currentSrc)
# but tried none. ``url`` replaces the MP4's address; ``after_error`` sets it up only once that
# source has failed (as when the page's script runs after a failed load).
_ADD_LOOP = """async ([url, afterError]) => {
  const holder = document.createElement("div");
  holder.innerHTML = document.querySelector("figure.media").outerHTML;
  const figure = holder.firstElementChild;
  figure.id = "late";
  figure.removeAttribute("data-state");
  figure.classList.remove("is-failed", "no-poster");
  const video = figure.querySelector("video");
  const source = video.querySelector("source");
  if (url) {
    source.src = url;
  }
  document.body.appendChild(figure);
  const seen = [video.networkState, video.currentSrc];
  if (afterError) {
    await new Promise((done) => source.addEventListener("error", done));
  }
  window.Hop.setupMedia(figure);
  return seen;
}"""


def test_a_loop_set_up_while_the_browser_picks_its_source_plays(
    desktop: BrowserContext, live_site: LiveSite
) -> None:
    """Seen in full runs: a loaded machine ran the page's script in the moment between the
    browser starting to choose the video's source and trying it, and the page called a good
    loop broken ("couldn't load"). Reproduced here every time by setting a loop up in that
    moment."""
    done = live_site.render.request("wake-up", f"Race {uuid.uuid4().hex[:6]}", wait_s=WAIT_S)
    assert done.status == "done", done
    watched = open_page(desktop)
    page = watched.page
    page.goto(f"/s/{done.key}")
    expect(page.locator("figure.media")).to_have_attribute("data-state", "playing")
    network_state, current_src = page.evaluate(_ADD_LOOP, [None, False])
    assert (network_state, current_src) == (3, "")  # NETWORK_NO_SOURCE, nothing tried yet
    expect(page.locator("#late")).to_have_attribute("data-state", "playing", timeout=30_000)
    watched.assert_clean()

    # A loop whose only source failed before the script ran is still called broken at once.
    missing = f"/media/r/aa/{'a' * len(done.key)}/loop.mp4"
    page.goto(f"/s/{done.key}")
    page.evaluate(_ADD_LOOP, [missing, True])
    late = page.locator("#late")
    expect(late).to_have_attribute("data-state", "failed")
    expect(late.locator(".media-retry")).to_be_visible()
