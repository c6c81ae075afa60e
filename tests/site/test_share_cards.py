"""Share cards in the pages: every public page's Open Graph/Twitter tags are absolute, sized and
point at images that answer 200; renders made before cards fall back to their poster; a render
not done yet shows the site's card; on S3 the card goes through its /m/ short link."""

from __future__ import annotations

import io
import urllib.request

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from loopmark.brand import demo_brand
from loopmark.config import Settings
from loopmark.errors import ConfigInvalid
from loopmark.records.renders import RenderStatus
from loopmark.service.render_service import media_keys
from tests.site.conftest import MakeApp, render_service, render_via_api
from tests.site.test_pages import Page, media_bytes

CARD_SIZE = (1200, 630)
SITE = "https://gifs.example"


def page_of(client: FlaskClient, path: str, status: int = 200) -> Page:
    response = client.get(path)
    assert response.status_code == status, (path, response.status_code)
    return Page(response.get_data(as_text=True))


def image_size(data: bytes) -> tuple[int, int]:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    return image.size


def fetch_local(client: FlaskClient, url: str) -> bytes:
    """A page's absolute URL on this site, fetched through the test client."""
    assert url.startswith(SITE + "/"), url
    return media_bytes(client, url)


@pytest.fixture
def https_app(make_app: MakeApp) -> Flask:
    return make_app(LOOPMARK_SITE_URL=SITE, LOOPMARK_TWITTER_SITE="hop_and_co")


@pytest.mark.parametrize(
    ("path", "title"),
    [("/", "Hop & Co. — make a GIF"), ("/gallery", "Gallery · Hop & Co."),
     ("/credits", "Credits · Hop & Co.")],
)  # fmt: skip
def test_home_gallery_and_credits_carry_the_site_card(
    https_app: Flask, path: str, title: str
) -> None:
    client = https_app.test_client()
    page = page_of(client, path)
    assert page.one("og:title") == page.one("twitter:title") == title
    assert page.one("og:description") and page.one("twitter:description")
    assert page.one("og:url") == SITE + path
    assert page.one("og:type") == "website"
    image = page.one("og:image")
    assert image == f"{SITE}/card/{demo_brand().version}.jpg"
    assert page.one("og:image:secure_url") == image == page.one("twitter:image")
    assert page.one("og:image:type") == "image/jpeg"
    size = (int(page.one("og:image:width")), int(page.one("og:image:height")))
    assert size == CARD_SIZE == image_size(fetch_local(client, image))
    assert page.one("og:image:alt") and page.one("twitter:image:alt")
    assert page.one("twitter:card") == "summary_large_image"
    assert page.one("twitter:site") == "@hop_and_co"
    assert "og:video" not in page.meta


def test_share_page_tags_are_absolute_sized_and_answer(https_app: Flask) -> None:
    client = https_app.test_client()
    done = render_via_api(client, "Card on the wall")
    key = done["key"]
    assert done["card_url"] == f"/media/r/{key[:2]}/{key}/card.jpg"
    page = page_of(client, f"/s/{key}")
    image, video = page.one("og:image"), page.one("og:video")
    assert image == f"{SITE}{done['card_url']}" == page.one("twitter:image")
    assert page.one("og:image:secure_url") == image
    assert page.one("og:video:secure_url") == video == f"{SITE}{done['mp4_url']}"
    size = (int(page.one("og:image:width")), int(page.one("og:image:height")))
    card = fetch_local(client, image)
    assert size == CARD_SIZE == image_size(card) and len(card) < 300_000
    assert (int(page.one("og:video:width")), int(page.one("og:video:height"))) == (
        done["width"],
        done["height"],
    )
    assert b"ftyp" in fetch_local(client, video)[:12]
    assert page.one("twitter:site") == "@hop_and_co"
    # The card's short link (what pages link when storage is private) leads to it too.
    assert client.get(f"/m/{key}.card.jpg").headers["Location"] == done["card_url"]


def test_a_render_made_before_cards_shows_its_poster_with_its_true_size(app: Flask) -> None:
    client = app.test_client()
    done = render_via_api(client, "Older than cards")
    service = render_service(app)
    record = service.records.get(done["key"])
    assert record is not None and record.media is not None
    # Another key recorded and stored as renders were before cards: no card, in media or store.
    old = "c" * 24
    media = {kind: value for kind, value in record.media.items() if kind != "card"}
    for kind, storage_key in media_keys(old).items():
        media[kind] = storage_key
        if kind != "card":
            data = service.blobs.get(media_keys(done["key"])[kind])
            service.blobs.put(storage_key, data, content_type="application/octet-stream")
    del media["card"]
    assert service.records.enqueue(old, template_id="small", caption="Old", words_version=None)
    claimed = service.records.claim_lease(
        old, owner="test", template_id="small", caption="Old", lease_seconds=60
    )
    assert claimed is not None
    assert service.records.complete(old, owner="test", media=media)

    body = client.get(f"/api/renders/{old}").get_json()
    assert body["card_url"] is None and body["poster_url"]
    page = page_of(client, f"/s/{old}")
    image = page.one("og:image")
    assert image == f"http://localhost{body['poster_url']}"
    size = (int(page.one("og:image:width")), int(page.one("og:image:height")))
    assert size == (done["width"], done["height"]) == image_size(media_bytes(client, image))


def test_a_render_not_done_yet_shows_the_site_card_uncached(app: Flask) -> None:
    service = render_service(app)
    key = "b" * 24
    service.records.enqueue(key, template_id="small", caption="Soon", words_version=None)
    record = service.records.get(key)
    assert record is not None and record.status == RenderStatus.QUEUED
    client = app.test_client()
    response = client.get(f"/s/{key}")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = Page(response.get_data(as_text=True))
    image = page.one("og:image")
    assert f"/card/{demo_brand().version}.jpg" in image and key not in image
    assert image_size(media_bytes(client, image)) == CARD_SIZE
    assert page.one("og:title") == "Soon"
    assert "og:video" not in page.meta


def test_on_s3_the_card_goes_through_its_short_link(aws: str, make_app: MakeApp) -> None:
    app = make_app(LOOPMARK_STORAGE="s3://loopmark-site/media")
    client = app.test_client()
    done = render_via_api(client, "Card from S3")
    key = done["key"]
    assert done["card_url"] == f"/m/{key}.card.jpg"
    page = page_of(client, f"/s/{key}")
    assert page.one("og:image") == f"http://localhost/m/{key}.card.jpg"
    response = client.get(done["card_url"])
    assert response.status_code == 302
    with urllib.request.urlopen(response.headers["Location"], timeout=30) as fetched:
        assert image_size(fetched.read()) == CARD_SIZE
    # Taken down: the short link is gone, and so is the card in the bucket.
    render_service(app).take_down(key, reason="test")
    assert client.get(done["card_url"]).status_code == 410
    assert not render_service(app).blobs.exists(f"r/{key[:2]}/{key}/card.jpg")


def test_twitter_site_setting() -> None:
    def settings(value: str) -> Settings:
        return Settings.from_env({"LOOPMARK_TWITTER_SITE": value})

    assert Settings.from_env({}).twitter_site == "@hopandco"
    assert settings("@Brand_1").twitter_site == "@Brand_1"
    assert settings("brand").twitter_site == "@brand"
    for bad in ("@", "two words", "@" + "x" * 16, "https://x.com/brand"):
        with pytest.raises(ConfigInvalid, match="LOOPMARK_TWITTER_SITE"):
            settings(bad)
