"""Download routes /d/<key>.gif and /d/<key>.mp4: a file saved under the brand's name, served
from local storage, or a redirect to an S3 URL signed with that disposition (moto's real server,
fetched over HTTP); unfinished and unknown keys 404, taken-down ones 410."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from loopmark.config import Settings
from loopmark.errors import ConfigInvalid
from tests.site.conftest import MakeApp, render_service, render_via_api

UNKNOWN_KEY = "b" * 24


def test_local_download_is_an_attachment_named_after_the_brand(
    client: FlaskClient, done: dict[str, Any]
) -> None:
    key = done["key"]
    with client.get(done["gif_url"]) as shown:
        shown_bytes = shown.data
    with client.get(f"/d/{key}.gif") as gif:
        assert gif.status_code == 200
        assert gif.headers["Content-Disposition"] == (
            f'attachment; filename="hop-and-co-{key}.gif"'
        )
        assert gif.mimetype == "image/gif"
        assert gif.data[:6] == b"GIF89a" and gif.data == shown_bytes
        # Cacheable for minutes, not a year: a take-down must reach the download too.
        assert gif.headers["Cache-Control"] == "public, max-age=300"
    with client.get(f"/d/{key}.mp4") as mp4:
        assert mp4.status_code == 200
        assert mp4.headers["Content-Disposition"] == (
            f'attachment; filename="hop-and-co-{key}.mp4"'
        )
        assert mp4.mimetype == "video/mp4" and mp4.data[4:8] == b"ftyp"


def test_the_brand_slug_comes_from_the_settings(make_app: MakeApp) -> None:
    client = make_app(LOOPMARK_BRAND_SLUG="acme-7").test_client()
    key = render_via_api(client, "Acme")["key"]
    with client.get(f"/d/{key}.gif") as response:
        disposition = response.headers["Content-Disposition"]
    assert disposition == f'attachment; filename="acme-7-{key}.gif"'


@pytest.mark.parametrize("slug", ["Hop", "hop co", "-hop", 'a"b', "a/b", "x" * 41])
def test_a_bad_brand_slug_is_refused_at_start(slug: str) -> None:
    with pytest.raises(ConfigInvalid, match="LOOPMARK_BRAND_SLUG"):
        Settings.from_env({"LOOPMARK_BRAND_SLUG": slug})


@pytest.mark.parametrize(
    "path",
    [f"/d/{UNKNOWN_KEY}.gif", f"/d/{UNKNOWN_KEY}.mp4", "/d/short.gif", f"/d/{UNKNOWN_KEY}.jpg"],
)
def test_unknown_or_malformed_downloads_are_404(client: FlaskClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_an_unfinished_render_has_no_download(app: Flask, client: FlaskClient) -> None:
    # Queued as an accepted request records it, but never rendered (no worker is asked).
    key = "c" * 24
    records = render_service(app).records
    assert records.enqueue(key, template_id="small", caption="Not yet", words_version=None)
    assert client.get(f"/d/{key}.gif").status_code == 404


def test_a_taken_down_render_gives_410(
    app: Flask, client: FlaskClient, done: dict[str, Any]
) -> None:
    key = done["key"]
    render_service(app).take_down(key, reason="test")
    assert client.get(f"/d/{key}.gif").status_code == 410
    assert client.get(f"/d/{key}.mp4").status_code == 410


def test_s3_download_redirects_to_a_url_signed_with_the_disposition(
    aws: str, make_app: MakeApp
) -> None:
    # Behind a CDN too: the signed URL goes to S3, which sends the disposition itself.
    app = make_app(
        LOOPMARK_STORAGE="s3://loopmark-site/media", LOOPMARK_MEDIA_BASE_URL="https://cdn.example/"
    )
    client = app.test_client()
    key = render_via_api(client, "From S3")["key"]
    response = client.get(f"/d/{key}.gif")
    assert response.status_code == 302
    assert response.headers["Cache-Control"] == "private, max-age=60"
    location = response.headers["Location"]
    assert location.startswith(aws) and "X-Amz-Signature=" in location
    with urllib.request.urlopen(location, timeout=30) as fetched:
        assert fetched.headers["Content-Disposition"] == (
            f'attachment; filename="hop-and-co-{key}.gif"'
        )
        assert fetched.headers["Content-Type"] == "image/gif"
        assert fetched.read(6) == b"GIF89a"
    render_service(app).take_down(key, reason="test")
    assert client.get(f"/d/{key}.gif").status_code == 410
