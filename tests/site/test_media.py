"""Media routes: local media files, /m/ short links (local, and S3 on moto's real server with
presigned URLs fetched over HTTP), and template previews; caching and refusals."""

from __future__ import annotations

import urllib.request
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from loopmark.renderer.prepare import PREPARE_VERSION
from loopmark.web.links import absolute, media_urls
from tests.site.conftest import MakeApp, render_service, render_via_api

IMMUTABLE = "public, max-age=31536000, immutable"
UNKNOWN_KEY = "b" * 24


# -- /media/ -----------------------------------------------------------------------------------


def test_local_media_are_immutable_with_their_types(
    client: FlaskClient, done: dict[str, Any]
) -> None:
    for kind, mimetype, magic in (
        ("gif_url", "image/gif", b"GIF89a"),
        ("mp4_url", "video/mp4", None),
        ("poster_url", "image/jpeg", b"\xff\xd8\xff"),
    ):
        with client.get(done[kind]) as response:
            assert response.status_code == 200
            assert response.mimetype == mimetype
            assert response.headers["Cache-Control"] == IMMUTABLE
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert "ETag" in response.headers
            if magic is not None:
                assert response.data.startswith(magic)


def test_local_media_answer_range_requests(client: FlaskClient, done: dict[str, Any]) -> None:
    # Mobile Safari plays MP4 only from a server that honours Range.
    with client.get(done["mp4_url"], headers={"Range": "bytes=0-9"}) as response:
        assert response.status_code == 206
        assert len(response.data) == 10
        assert response.headers["Content-Range"].startswith("bytes 0-9/")


def test_local_media_revalidate_with_304(client: FlaskClient, done: dict[str, Any]) -> None:
    with client.get(done["gif_url"]) as first:
        etag = first.headers["ETag"]
    with client.get(done["gif_url"], headers={"If-None-Match": etag}) as again:
        assert again.status_code == 304


@pytest.mark.parametrize(
    "path",
    [
        f"/media/r/bb/{UNKNOWN_KEY}/loop.gif",  # no such render
        "/media/r/../loopmark.db",
        "/media/r/%2e%2e/loopmark.db",
        "/media/loopmark.db",
        "/media/templates/small/source.mp4",  # only render media, under r/
        "/media/r/bb/x/loop.txt",  # only media types
        "/media/r/bb/.tmp-x.gif",  # the local store's temporary files
        "/media/r/BB/X.gif",
    ],
)
def test_media_refuse_anything_but_stored_render_media(
    client: FlaskClient, done: dict[str, Any], path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["Cache-Control"] != IMMUTABLE


# -- /m/ short links ---------------------------------------------------------------------------


def test_short_links_redirect_to_public_media_when_storage_is_local(
    client: FlaskClient, done: dict[str, Any]
) -> None:
    key = done["key"]
    response = client.get(f"/m/{key}.gif")
    assert response.status_code == 302
    assert response.headers["Location"] == done["gif_url"]
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert client.get(f"/m/{key}.jpg").headers["Location"] == done["poster_url"]
    assert client.get(f"/m/{key}.mp4").headers["Location"] == done["mp4_url"]


@pytest.mark.parametrize(
    "path", [f"/m/{UNKNOWN_KEY}.gif", "/m/short.gif", f"/m/{UNKNOWN_KEY}.png", "/m/.gif"]
)
def test_short_links_to_unknown_or_malformed_keys_are_404(client: FlaskClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_short_links_of_a_taken_down_render_are_gone(
    app: Flask, client: FlaskClient, done: dict[str, Any]
) -> None:
    render_service(app).records.block(done["key"], reason="test")
    assert client.get(f"/m/{done['key']}.gif").status_code == 410


def test_s3_media_go_through_short_links_to_fetchable_signed_urls(
    aws: str, make_app: MakeApp
) -> None:
    app = make_app(LOOPMARK_STORAGE="s3://loopmark-site/media")
    client = app.test_client()
    done = render_via_api(client, "From S3")
    key = done["key"]
    # No signed URL in anything a cache may keep: the API and pages link /m/.
    assert done["gif_url"] == f"/m/{key}.gif"
    assert done["poster_url"] == f"/m/{key}.jpg"
    response = client.get(done["gif_url"])
    assert response.status_code == 302
    assert response.headers["Cache-Control"] == "private, max-age=60"
    location = response.headers["Location"]
    assert location.startswith(aws)
    assert "X-Amz-Signature=" in location and "X-Amz-Expires=300" in location
    with urllib.request.urlopen(location, timeout=30) as fetched:
        assert fetched.read(6) == b"GIF89a"
    # The CSP lets the page load media from the bucket's origin (where /m/ redirects).
    parts = urlsplit(aws)
    csp = client.get("/api/templates").headers["Content-Security-Policy"]
    assert f"img-src 'self' {parts.scheme}://{parts.netloc}" in csp


def test_s3_behind_a_cdn_links_the_cdn(aws: str, make_app: MakeApp) -> None:
    app = make_app(
        LOOPMARK_STORAGE="s3://loopmark-site/media", LOOPMARK_MEDIA_BASE_URL="https://cdn.example/"
    )
    client = app.test_client()
    done = render_via_api(client, "From the CDN")
    assert done["gif_url"] == f"https://cdn.example/r/{done['key'][:2]}/{done['key']}/loop.gif"
    short = client.get(f"/m/{done['key']}.gif")
    assert short.headers["Location"] == done["gif_url"]
    csp = short.headers["Content-Security-Policy"]
    assert "media-src 'self' https://cdn.example" in csp


def test_media_urls_and_absolute_links(app: Flask) -> None:
    with app.test_request_context(base_url="https://gifs.example"):
        urls = media_urls(UNKNOWN_KEY)
        assert urls["gif"] == f"/media/r/bb/{UNKNOWN_KEY}/loop.gif"
        assert absolute(urls["poster"]) == f"https://gifs.example{urls['poster']}"
        assert absolute("https://cdn.example/x.gif") == "https://cdn.example/x.gif"
        with pytest.raises(ValueError):
            media_urls("../etc/passwd")


# -- template previews -------------------------------------------------------------------------


def test_template_previews_are_immutable(client: FlaskClient) -> None:
    small = client.get("/api/templates").get_json()[0]
    with client.get(small["preview_url"]) as preview:
        assert preview.status_code == 200
        assert preview.mimetype == "video/mp4"
        assert preview.headers["Cache-Control"] == IMMUTABLE
    with client.get(small["poster_url"]) as poster:
        assert poster.mimetype == "image/jpeg"
        assert poster.data[:3] == b"\xff\xd8\xff"


def test_template_previews_by_bare_version(app: Flask, client: FlaskClient) -> None:
    template = render_service(app).catalog.get("small")
    with client.get(f"/templates/small/{template.version}/poster.jpg") as poster:
        assert poster.status_code == 200
        assert poster.headers["Cache-Control"] == IMMUTABLE


@pytest.mark.parametrize(
    "path",
    [
        "/templates/small/0123456789abcdef/poster.jpg",  # not a version of small
        f"/templates/small/0123456789abcdef-p{PREPARE_VERSION}/preview.mp4",
        "/templates/small/latest/poster.jpg",
        "/templates/nope/0123456789abcdef/poster.jpg",
        "/templates/small/0123456789abcdef/meta.json",
        "/templates/small/0123456789abcdef/frames.npy",
    ],
)
def test_template_files_refuse_unknown_paths(client: FlaskClient, path: str) -> None:
    assert client.get(path).status_code == 404
