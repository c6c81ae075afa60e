"""The small public files: robots.txt, sitemap.xml (public pages with the site's URL, never a
share page), the web manifest and its icons, favicon.ico and the apple-touch-icon."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from tests.site.conftest import MakeApp

SITE = "https://gifs.example.test"
SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


@pytest.fixture
def public(make_app: MakeApp) -> Flask:
    return make_app(SITE_URL=SITE)


def test_robots_allows_public_pages_and_keeps_out_admin_and_api(public: Flask) -> None:
    with public.test_client().get("/robots.txt") as response:
        assert response.status_code == 200
        assert response.mimetype == "text/plain"
        lines = response.get_data(as_text=True).splitlines()
    assert lines[:2] == ["User-agent: *", "Allow: /"]
    disallowed = {line.split(": ", 1)[1] for line in lines if line.startswith("Disallow:")}
    assert {"/admin", "/api"} <= disallowed
    # Share pages stay crawlable, so their noindex is seen.
    assert not any(path.startswith(("/s", "/gallery", "/credits")) for path in disallowed)
    assert f"Sitemap: {SITE}/sitemap.xml" in lines


def test_sitemap_lists_the_public_pages_with_the_site_url(public: Flask) -> None:
    with public.test_client().get("/sitemap.xml") as response:
        assert response.status_code == 200
        assert response.mimetype == "application/xml"
        root = ET.fromstring(response.data)
    assert root.tag == f"{SITEMAP_NS}urlset"
    locations = [loc.text for loc in root.iter(f"{SITEMAP_NS}loc")]
    assert locations == [
        f"{SITE}/",
        f"{SITE}/gallery",
        f"{SITE}/credits",
        f"{SITE}/privacy",
        f"{SITE}/terms",
    ]
    assert not any(urlsplit(url or "").path.startswith("/s/") for url in locations)


def test_manifest_names_the_brand_and_real_icons(public: Flask) -> None:
    client = public.test_client()
    with client.get("/manifest.webmanifest") as response:
        assert response.status_code == 200
        assert response.mimetype == "application/manifest+json"
        manifest = response.get_json(force=True)
    assert manifest["short_name"] == "Hop & Co." and manifest["start_url"] == "/"
    assert manifest["theme_color"] == "#5b2e91"
    purposes = set()
    for icon in manifest["icons"]:
        with client.get(icon["src"]) as image_response:
            assert image_response.status_code == 200
            image = Image.open(io.BytesIO(image_response.data))
        assert image.format == "PNG" and icon["type"] == "image/png"
        assert f"{image.width}x{image.height}" == icon["sizes"]
        purposes.add(icon["purpose"])
    assert {"192x192", "512x512"} <= {icon["sizes"] for icon in manifest["icons"]}
    assert purposes == {"any", "maskable"}


def test_favicon_ico_holds_small_sizes(client: FlaskClient) -> None:
    with client.get("/favicon.ico") as response:
        assert response.status_code == 200
        assert response.mimetype == "image/vnd.microsoft.icon"
        icon = Image.open(io.BytesIO(response.data))
    assert icon.format == "ICO"
    assert {(16, 16), (32, 32), (48, 48)} <= set(icon.info["sizes"])


@pytest.mark.parametrize("path", ["/apple-touch-icon.png", "/apple-touch-icon-precomposed.png"])
def test_apple_touch_icon_is_an_opaque_180px_png(client: FlaskClient, path: str) -> None:
    with client.get(path) as response:
        assert response.status_code == 200
        image = Image.open(io.BytesIO(response.data))
    # Opaque: iOS draws transparency as black, and rounds the corners itself.
    assert image.format == "PNG" and image.size == (180, 180) and image.mode == "RGB"
    # The brand's purple fills the corners.
    assert image.getpixel((2, 2)) == (0x5B, 0x2E, 0x91)


def test_pages_link_the_icons_and_the_manifest(client: FlaskClient) -> None:
    html = client.get("/").get_data(as_text=True)
    assert 'rel="manifest" href="/manifest.webmanifest"' in html
    assert 'rel="apple-touch-icon" href="/static/img/apple-touch-icon.png?v=' in html
    assert 'rel="icon" href="/favicon.ico"' in html
