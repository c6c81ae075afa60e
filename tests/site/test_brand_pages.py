"""The brand on the site: names, colours and copy from brand.toml on every page (and in the
admin's shell), /brand.css, the site's card drawn from the brand, and the privacy and terms pages
(the brand's text, or a redirect to the brand's own page)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from flask import Flask
from markupsafe import escape
from PIL import Image

from loopmark.brand import DEMO_BRAND_FILE, demo_brand
from loopmark.storage.base import IMMUTABLE_CACHE_CONTROL
from tests.pixels import pixel
from tests.site.conftest import MakeApp
from tests.site.test_pages import Page

SITE = "https://gifs.example.test"


@pytest.fixture
def fizz_file(tmp_path: Path) -> Path:
    """Another brand: other name, slug, handle, colours, copy; privacy kept on its own site."""
    folder = tmp_path / "fizz"
    shutil.copytree(DEMO_BRAND_FILE.parent, folder)
    path = folder / "brand.toml"
    text = path.read_text(encoding="utf-8").replace("Hop & Co.", "Fizz Ltd")
    for old, new in [
        ('slug = "hop-and-co"', 'slug = "fizz"'),
        ('handle = "@hopandco"', 'handle = "fizzdrinks"'),
        ('primary = "#5b2e91"', 'primary = "#0a5c36"'),
        ('file = "privacy.txt"', 'url = "https://fizz.example/p"'),
        ('title = "Terms of use"\nfile = "terms.txt"', 'title = "Terms"\ntext = "## A\\nBe nice."'),
        ('[pages.terms.de]\ntitle = "Nutzungsbedingungen"\nfile = "terms.de.txt"\n', ""),
    ]:  # fmt: skip
        assert old in text
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def fizz(make_app: MakeApp, fizz_file: Path) -> Flask:
    return make_app(LOOPMARK_BRAND_FILE=str(fizz_file), LOOPMARK_SITE_URL=SITE)


def test_pages_name_the_brand_of_the_brand_file(fizz: Flask) -> None:
    client = fizz.test_client()
    for path in ("/", "/gallery", "/credits", "/terms", "/no-such-page"):
        html = client.get(path).get_data(as_text=True)
        assert "Fizz Ltd" in html, path
        assert "Hop" not in html, path
        page = Page(html)
        assert page.one("og:site_name") == "Fizz Ltd"
        assert page.one("twitter:site") == "@fizzdrinks"
        assert page.one("theme-color") == "#0a5c36"
    page = Page(client.get("/").get_data(as_text=True))
    assert page.one("og:title") == "Fizz Ltd — make a GIF"
    manifest = client.get("/manifest.webmanifest").get_json(force=True)
    assert manifest["short_name"] == "Fizz Ltd" and manifest["theme_color"] == "#0a5c36"


def test_brand_css_carries_the_colours_cached_by_version(fizz: Flask) -> None:
    client = fizz.test_client()
    page = Page(client.get("/").get_data(as_text=True))
    sheets = [
        a["href"] for tag, a in page.elements if tag == "link" and a.get("rel") == "stylesheet"
    ]
    brand_css = next(href for href in sheets if href.startswith("/brand.css"))
    with client.get(brand_css) as response:
        assert response.status_code == 200 and response.mimetype == "text/css"
        assert "--purple: #0a5c36;" in response.get_data(as_text=True)
        assert response.headers["Cache-Control"] == IMMUTABLE_CACHE_CONTROL
    with client.get("/brand.css?v=stale") as response:
        assert response.headers["Cache-Control"] == "no-cache"


def test_the_site_card_is_drawn_from_the_brand(make_app: MakeApp, fizz_file: Path) -> None:
    demo = make_app(LOOPMARK_SITE_URL=SITE).test_client()
    other = make_app(LOOPMARK_BRAND_FILE=str(fizz_file), LOOPMARK_SITE_URL=SITE).test_client()
    corners = []
    for client in (demo, other):
        image_url = Page(client.get("/gallery").get_data(as_text=True)).one("og:image")
        assert image_url.startswith(f"{SITE}/card/")
        with client.get(image_url.removeprefix(SITE)) as response:
            assert response.status_code == 200 and response.mimetype == "image/jpeg"
            assert response.headers["Cache-Control"] == IMMUTABLE_CACHE_CONTROL
            image = Image.open(io.BytesIO(response.data))
            assert image.size == (1200, 630)
            corners.append(pixel(image.convert("RGB"), (4, 4)))
    purple, green = corners
    assert abs(purple[0] - 0x5B) < 8 and abs(purple[2] - 0x91) < 8
    assert abs(green[1] - 0x5C) < 8 and green[2] < 0x40


def test_privacy_and_terms_pages_show_the_brands_words(make_app: MakeApp) -> None:
    client = make_app().test_client()
    for path, title in (("/privacy", "Privacy"), ("/terms", "Terms of use")):
        with client.get(path) as response:
            assert response.status_code == 200
            page = Page(response.get_data(as_text=True))
        headings = [a for tag, a in page.elements if tag == "h2"]
        assert headings, path  # the "## " lines became headings
        assert f"<h1>{title}</h1>" in response.get_data(as_text=True)
    footer = Page(client.get("/").get_data(as_text=True))
    hrefs = {a.get("href") for tag, a in footer.elements if tag == "a"}
    assert {"/privacy", "/terms"} <= hrefs
    first_words = str(escape(demo_brand().privacy.blocks[0][1]))
    assert first_words in client.get("/privacy").get_data(as_text=True)


def test_privacy_and_terms_pages_speak_the_visitors_language(make_app: MakeApp) -> None:
    """The demo brand wrote both pages in German too ([pages.privacy.de]): a German visitor
    reads them in German, footer links and titles included; English stays English."""
    client = make_app().test_client()
    german = {"Accept-Language": "de"}
    for path, title, words in (
        ("/privacy", "Datenschutz", "Was wir speichern"),
        ("/terms", "Nutzungsbedingungen", "Deine Worte"),
    ):
        html = client.get(path, headers=german).get_data(as_text=True)
        assert '<html lang="de"' in html
        assert f"<h1>{title}</h1>" in html and words in html, path
        assert "What we keep" not in html and "Your words" not in html
        assert '<section class="brand-page">' in html  # the text is not marked as English
        english = client.get(path, headers={"Accept-Language": "en"}).get_data(as_text=True)
        assert words not in english
    footer = client.get("/", headers=german).get_data(as_text=True)
    assert ">Datenschutz</a>" in footer and ">Nutzungsbedingungen</a>" in footer


def test_a_page_the_brand_wrote_in_one_language_says_which(fizz: Flask) -> None:
    """Fizz's terms are English only: a German visitor gets them under a German title, the
    text marked lang="en" (screen readers and translating browsers read it as English)."""
    client = fizz.test_client()
    html = client.get("/terms", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert '<section class="brand-page" lang="en">' in html
    assert '<h1 lang="de">' in html and "Be nice." in html


def test_a_page_kept_on_the_brands_site_is_a_redirect_and_linked_there(fizz: Flask) -> None:
    client = fizz.test_client()
    with client.get("/privacy") as response:
        assert response.status_code == 302
        assert response.headers["Location"] == "https://fizz.example/p"
    html = client.get("/").get_data(as_text=True)
    assert 'href="https://fizz.example/p"' in html
    assert "Be nice." in client.get("/terms").get_data(as_text=True)
    sitemap = client.get("/sitemap.xml").get_data(as_text=True)
    assert f"{SITE}/terms" in sitemap and "/privacy" not in sitemap


def test_downloads_are_named_after_the_brand_files_slug(fizz: Flask) -> None:
    from tests.site.conftest import render_via_api

    client = fizz.test_client()
    key = render_via_api(client, "Named")["key"]
    with client.get(f"/d/{key}.gif") as response:
        assert response.headers["Content-Disposition"] == f'attachment; filename="fizz-{key}.gif"'
