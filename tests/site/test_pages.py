"""The visitor's pages through Flask's test client: every page renders, share-page meta tags
are parsed and checked, malformed keys get 404, and no page carries inline script or style."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from loopmark import create_app
from loopmark.brand import demo_brand
from loopmark.composition import setup_backends
from loopmark.errors import RecordsUnavailable
from loopmark.renderer.prepare import PreparedTemplate
from loopmark.service.render_service import RenderService
from loopmark.site.pages import BBB_CREDIT, share_links
from loopmark.web.context import services
from loopmark.web.links import media_urls

CAPTION = "Hello from the pages"
BLOCKED_CAPTION = "Soon taken down"
UNKNOWN_KEY = "a" * 24
RENDER_WAIT_S = 120.0  # generous: the machine is shared; the test fails if it is not done


class Page(HTMLParser):
    """What the tests look at in a page: meta tags, links, elements by tag, inline code."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, list[str]] = {}
        self.links: dict[str, str] = {}
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.inline_scripts = 0
        self.style_blocks = 0
        self.inline_handlers: list[str] = []
        self._in_script = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        self.elements.append((tag, found))
        self.inline_handlers += [n for n in found if n.startswith("on") or n == "style"]
        if tag == "meta":
            name = found.get("property") or found.get("name")
            if name:
                self.meta.setdefault(name, []).append(found.get("content", ""))
        elif tag == "link" and "rel" in found:
            self.links[found["rel"]] = found.get("href", "")
        elif tag == "script":
            # A data block (application/json: the scripts' strings) is never run: not a script.
            data_block = found.get("type", "") == "application/json"
            self._in_script = "src" not in found and not data_block
        elif tag == "style":
            self.style_blocks += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1

    def one(self, name: str) -> str:
        values = self.meta.get(name, [])
        assert len(values) == 1, f"expected one <meta {name}>, found {values}"
        return values[0]

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        wanted = {k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()}
        return [
            a
            for t, a in self.elements
            if t == tag and all(a.get(k) == v for k, v in wanted.items())
        ]

    def with_class(self, tag: str, css_class: str) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == tag and css_class in a.get("class", "").split()]


def site_config(workdir: Path, tmp: Path, **overrides: str) -> dict[str, Any]:
    return {
        "TESTING": True,
        "LOOPMARK_DATA_DIR": str(workdir),
        "LOOPMARK_TEMPLATES_DIR": str(workdir / "templates"),
        "LOOPMARK_STORAGE": f"file://{tmp / 'media'}",
        "LOOPMARK_RECORDS": f"sqlite:///{tmp / 'loopmark.db'}",
        "LOOPMARK_RENDER_CONCURRENCY": "1",
        "LOOPMARK_RATE_LIMITS": "off",
        "LOOPMARK_JSON_LOGS": "off",
        **overrides,
    }


def render_service(app: Flask) -> RenderService:
    return services(app).render


def render_done(service: RenderService, template_id: str, caption: str) -> str:
    outcome = service.request(template_id, caption, wait_s=RENDER_WAIT_S)
    assert outcome.status == "done", outcome
    return outcome.key


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, workdir: Path, small: PreparedTemplate
) -> Iterator[Flask]:
    """A site over the session's small template, with real SQLite records and local media."""
    app = create_app(site_config(workdir, tmp_path_factory.mktemp("pages")))
    setup_backends(services(app).settings)
    yield app
    services(app).close()


@pytest.fixture(scope="module")
def done_key(site: Flask) -> str:
    return render_done(render_service(site), "small", CAPTION)


@pytest.fixture(scope="module")
def blocked_key(site: Flask) -> str:
    service = render_service(site)
    key = render_done(service, "small", BLOCKED_CAPTION)
    service.records.block(key, reason="test take-down")
    return key


@pytest.fixture
def web(site: Flask) -> FlaskClient:
    return site.test_client()


def get_page(web: FlaskClient, path: str, status: int = 200) -> Page:
    response = web.get(path)
    assert response.status_code == status, (path, response.status_code)
    assert response.mimetype == "text/html"
    return Page(response.get_data(as_text=True))


def media_bytes(web: FlaskClient, url: str) -> bytes:
    """The bytes a media URL serves, following the /m/ short link's redirect if there is one."""
    path = urlsplit(url).path
    with web.get(path) as response:
        if response.status_code == 302:
            path = urlsplit(response.headers["Location"]).path
        else:
            assert response.status_code == 200, (path, response.status_code)
            return response.get_data()
    with web.get(path) as response:
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data()


def image_preloads(page: Page) -> list[str]:
    """The images the page's head asks for early, at high priority (the largest paint)."""
    return [
        found["href"]
        for tag, found in page.elements
        if tag == "link" and found.get("rel") == "preload" and found.get("as") == "image"
        if found.get("fetchpriority") == "high"
    ]


def looping_video(page: Page) -> tuple[dict[str, str], dict[str, str]]:
    """The page's one loop: <video autoplay muted loop playsinline poster> and its MP4 source."""
    (video,) = page.with_class("video", "media-video")
    assert {"autoplay", "muted", "loop", "playsinline"} <= video.keys()
    assert video["poster"]
    (source,) = page.find("source", type="video/mp4")
    return video, source


def render_service_urls(web: FlaskClient, key: str) -> dict[str, str]:
    """The render's media URLs, as the pages link them."""
    assert web.application is not None
    with web.application.test_request_context():
        return media_urls(key)


def assert_csp_friendly(page: Page) -> None:
    """No inline script, no <style> block, no style= or on*= attribute (the CSP forbids them)."""
    assert page.inline_scripts == 0
    assert page.style_blocks == 0
    assert page.inline_handlers == []
    scripts = [a["src"] for t, a in page.elements if t == "script" and "src" in a]
    stylesheets = [
        a["href"] for t, a in page.elements if t == "link" and a.get("rel") == "stylesheet"
    ]
    assert stylesheets and all("?v=" in href for href in stylesheets)
    assert scripts and all(src.startswith("/static/js/") and "?v=" in src for src in scripts)


# -- home, gallery, credits --------------------------------------------------------------------


def test_home_has_a_video_hero_and_the_creator(web: FlaskClient) -> None:
    page = get_page(web, "/")
    assert_csp_friendly(page)
    (hero,) = page.with_class("video", "hero-video")
    assert hero["data-src"].startswith("/templates/small/") and hero["data-src"].endswith(
        "/preview.mp4"
    )
    assert hero["poster"].endswith("/poster.jpg")
    assert image_preloads(page) == [hero["poster"]]
    # The loop starts from script (and never with reduced motion): no autoplay attribute.
    assert "autoplay" not in hero and "muted" in hero and "playsinline" in hero
    (creator,) = page.find("section", id="create")
    assert creator["data-templates-url"] == "/api/templates"
    assert creator["data-check-url"] == "/api/captions/check"
    assert creator["data-renders-url"] == "/api/renders"
    assert page.find("input", id="caption-input")
    assert page.find("div", role="progressbar")
    scripts = [a["src"] for t, a in page.elements if t == "script" and "src" in a]
    assert any("/creator.js" in s for s in scripts) and any("/progress.js" in s for s in scripts)


def test_home_credits_big_buck_bunny(web: FlaskClient) -> None:
    html = web.get("/").get_data(as_text=True)
    assert BBB_CREDIT in html
    assert 'href="/credits"' in html


def test_home_renders_without_templates(workdir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "no-templates"
    empty.mkdir()
    app = create_app(site_config(workdir, tmp_path, LOOPMARK_TEMPLATES_DIR=str(empty)))
    try:
        page = get_page(app.test_client(), "/")
    finally:
        services(app).close()
    assert page.with_class("video", "hero-video") == []
    assert image_preloads(page) == []
    assert page.find("section", id="create")


def test_gallery_is_a_shell_for_graphql(web: FlaskClient) -> None:
    page = get_page(web, "/gallery")
    assert_csp_friendly(page)
    (grid,) = page.find("ul", id="gallery-grid")
    assert grid["data-graphql-url"] == "/graphql"


def test_credits_lists_templates_and_the_cc_by_line(web: FlaskClient) -> None:
    response = web.get("/credits")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert BBB_CREDIT in html
    assert "https://creativecommons.org/licenses/by/3.0/" in html
    assert "<strong>Small</strong>" in html  # the template name
    assert_csp_friendly(Page(html))


# -- error pages -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/no-such-page",
        "/s/short",
        "/s/" + "A" * 24,  # upper case is not base32 as keys are written
        "/s/" + "a" * 23 + "1",  # 1 is not in the base32 alphabet
        "/s/" + "a" * 25,
        "/r/" + "a" * 23 + "8",
        "/r/" + UNKNOWN_KEY,  # well formed but unknown: the result page needs a render
    ],
)
def test_not_found_pages_are_branded(web: FlaskClient, path: str) -> None:
    page = get_page(web, path, status=404)
    assert page.find("p", class_="error-code")
    assert "This loop hopped away" in web.get(path).get_data(as_text=True)
    assert_csp_friendly(page)


def test_500_template_renders_a_message(site: Flask) -> None:
    from flask import render_template

    with site.test_request_context("/"):
        html = render_template("500.html", message="The oven is cold.")
    assert "The oven is cold." in html
    assert "We spilled the cold brew" in html


# -- the share page ----------------------------------------------------------------------------


def test_unknown_share_key_is_404_with_the_site_card(web: FlaskClient) -> None:
    path = f"/s/{UNKNOWN_KEY}"
    assert len(path) <= 32
    page = get_page(web, path, status=404)
    assert_csp_friendly(page)
    # The site's own card, never the 404s of media that do not exist.
    image = page.one("og:image")
    assert image.startswith(f"http://localhost/card/{demo_brand().version}.jpg")
    assert UNKNOWN_KEY not in image and "og:video" not in page.meta
    assert (page.one("og:image:width"), page.one("og:image:height")) == ("1200", "630")
    assert page.one("twitter:card") == "summary_large_image"
    assert page.one("twitter:image") == image
    assert media_bytes(web, image)[:2] == b"\xff\xd8"


def test_share_page_of_a_render_has_its_caption_and_card(web: FlaskClient, done_key: str) -> None:
    path = f"/s/{done_key}"
    page = get_page(web, path)
    assert_csp_friendly(page)
    canonical = f"http://localhost{path}"
    assert page.links["canonical"] == canonical
    assert page.one("og:url") == canonical
    assert page.one("og:type") == "video.other"
    assert page.one("og:description")
    assert page.one("og:title") == CAPTION
    assert page.one("og:image:alt") == CAPTION
    image, video = page.one("og:image"), page.one("og:video")
    assert image.startswith("http://localhost/") and image.endswith(f"{done_key}/card.jpg")
    assert video.startswith("http://localhost/") and video.endswith(".mp4")
    assert page.one("og:image:type") == "image/jpeg"
    assert (page.one("og:image:width"), page.one("og:image:height")) == ("1200", "630")
    assert page.one("og:video:type") == "video/mp4"
    assert page.one("twitter:card") == "summary_large_image"
    assert page.one("twitter:site") == "@hopandco"
    assert page.one("twitter:image") == image
    width, height = int(page.one("og:video:width")), int(page.one("og:video:height"))
    assert width == 160 and height > 0
    # The media URLs in the tags really serve the render's card and MP4.
    assert media_bytes(web, image)[:2] == b"\xff\xd8"
    assert b"ftyp" in media_bytes(web, video)[:12]
    video_element, _ = looping_video(page)
    assert video_element["aria-label"] == CAPTION and video_element["width"] == str(width)
    assert image_preloads(page) == [video_element["poster"]]
    # Share pages stay out of search results; the GIF is offered as a download.
    assert page.one("robots") == "noindex"
    (gif,) = page.with_class("a", "download-gif")
    assert gif["href"] == f"/d/{done_key}.gif"


def test_share_page_renders_when_records_are_down(workdir: Path, tmp_path: Path) -> None:
    # Records never set up: every lookup raises RecordsUnavailable.
    missing = tmp_path / "gone" / "loopmark.db"
    app = create_app(site_config(workdir, tmp_path, LOOPMARK_RECORDS=f"sqlite:///{missing}"))
    try:
        with app.test_request_context():
            with pytest.raises(RecordsUnavailable):
                render_service(app).records.get(UNKNOWN_KEY)
        page = get_page(app.test_client(), f"/s/{UNKNOWN_KEY}")
    finally:
        services(app).close()
    # From the key alone: the card (its size is fixed), the MP4 without a size claimed.
    assert page.one("og:title") == demo_brand().share.render_title == "A GIF made with Hop & Co."
    image = page.one("og:image")
    assert image.startswith("http://localhost/") and image.endswith(f"{UNKNOWN_KEY}/card.jpg")
    assert (page.one("og:image:width"), page.one("og:image:height")) == ("1200", "630")
    assert page.one("og:video").endswith(".mp4")
    assert "og:video:width" not in page.meta and "og:video:height" not in page.meta


def test_taken_down_share_page_is_gone(web: FlaskClient, blocked_key: str) -> None:
    page = get_page(web, f"/s/{blocked_key}", status=410)
    assert "og:image" not in page.meta and "og:video" not in page.meta
    assert page.one("robots") == "noindex"


# -- the result page ---------------------------------------------------------------------------


def test_result_page_offers_downloads_and_share_links(web: FlaskClient, done_key: str) -> None:
    page = get_page(web, f"/r/{done_key}")
    assert_csp_friendly(page)
    assert page.one("robots") == "noindex"
    video, source = looping_video(page)
    assert video["aria-label"] == CAPTION
    assert b"ftyp" in media_bytes(web, source["src"])[:12]
    assert media_bytes(web, video["poster"])[:2] == b"\xff\xd8"
    assert image_preloads(page) == [video["poster"]]  # the poster, never the GIF
    # The GIF is never shown: it is only downloaded (the /d/ route) and shared (the file).
    assert not [a for t, a in page.elements if t == "img" and ".gif" in a.get("src", "")]
    (gif,) = page.with_class("a", "download-gif")
    (mp4,) = page.with_class("a", "download-mp4")
    assert gif["href"] == f"/d/{done_key}.gif"
    assert gif["download"] == f"hop-and-co-{done_key}.gif"
    assert mp4["href"] == f"/d/{done_key}.mp4"
    assert mp4["download"] == f"hop-and-co-{done_key}.mp4"
    assert media_bytes(web, gif["href"])[:6] == b"GIF89a"
    gif_url = render_service_urls(web, done_key)["gif"]

    share_url = f"http://localhost/s/{done_key}"
    (box,) = page.find("div", class_="share")
    assert box["data-share-url"] == share_url
    assert box["data-share-file"] == gif_url
    hrefs = {
        a["class"].split()[-1]: a["href"]
        for t, a in page.elements
        if t == "a" and "share-" in a.get("class", "")
    }
    assert parse_qs(urlsplit(hrefs["share-facebook"]).query)["u"] == [share_url]
    assert parse_qs(urlsplit(hrefs["share-x"]).query)["url"] == [share_url]
    assert share_url in parse_qs(urlsplit(hrefs["share-whatsapp"]).query)["text"][0]
    assert share_url in parse_qs(urlsplit(hrefs["share-email"]).query)["body"][0]
    assert page.with_class("button", "share-copy") and page.with_class("button", "share-native")


def test_result_page_of_a_taken_down_render_is_gone(web: FlaskClient, blocked_key: str) -> None:
    response = web.get(f"/r/{blocked_key}")
    assert response.status_code == 410
    assert "taken down" in response.get_data(as_text=True)


def test_share_links_encode_the_url_and_text() -> None:
    url = "https://gifs.example/s/abc"
    text = "“Rise & hop” — made with Hop & Co."
    found = {link.kind: link.url for link in share_links(url, text)}
    assert set(found) == {"facebook", "x", "whatsapp", "email"}
    assert found["facebook"].startswith("https://www.facebook.com/sharer/sharer.php?")
    x = parse_qs(urlsplit(found["x"]).query)
    assert x == {"text": [text], "url": [url]}
    assert parse_qs(urlsplit(found["whatsapp"]).query)["text"] == [f"{text} {url}"]
    mail = urlsplit(found["email"])
    assert mail.scheme == "mailto" and "+" not in mail.query  # RFC 6068: %20, not +
    assert parse_qs(mail.query)["subject"] == [text]


def test_result_page_of_a_queued_render_shows_progress(site: Flask, web: FlaskClient) -> None:
    service = render_service(site)
    # One worker, a few renders ahead: the last one is still queued when its page is asked for.
    keys = [service.request("small", f"Queued {i}").key for i in range(6)]
    response = web.get(f"/r/{keys[-1]}")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"  # it reloads itself when done
    page = Page(response.get_data(as_text=True))
    (pending,) = page.find("div", id="result-pending")
    assert pending["data-status-url"] == f"/api/renders/{keys[-1]}"
    assert pending["data-result-url"] == f"/r/{keys[-1]}"
    assert page.find("div", role="progressbar") and not page.find("figure", class_="media")
    for key in keys:
        service.dispatcher.wait(key, RENDER_WAIT_S)
