"""A render whose GIF is stored but whose MP4 is not yet: the API reports each rendition, the
result and share pages show it without waiting for the MP4, and the GIF downloads."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from loopmark.renderer.render import render_key
from loopmark.service.render_service import media_keys
from tests.site.conftest import render_service, render_via_api

GIF = b"GIF89a" + bytes(64)  # the routes serve bytes, they do not decode them
LEASE_S = 600.0  # live for the whole test


@pytest.fixture
def gif_only(app: Flask) -> str:
    """A render under way, held by a worker, with only its GIF stored and recorded."""
    service = render_service(app)
    key = render_key(service.catalog.get("small"), "Half way")
    held = service.records.claim_lease(
        key, owner="worker", template_id="small", caption="Half way", lease_seconds=LEASE_S
    )
    assert held is not None
    service.blobs.put(media_keys(key)["gif"], GIF, content_type="image/gif")
    media = {"gif": media_keys(key)["gif"], "bytes": len(GIF), "width": 160, "height": 90}
    assert service.records.record_renditions(key, owner="worker", media=media)
    return key


def test_the_api_reports_the_gif_before_the_mp4(client: FlaskClient, gif_only: str) -> None:
    response = client.get(f"/api/renders/{gif_only}")
    assert response.status_code == 202
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["status"] == "rendering"
    assert body["renditions"] == {
        "gif": True,
        "mp4": False,
        "poster": False,
        "card": False,
        "thumbnail": False,
    }
    assert body["gif_url"].endswith(media_keys(gif_only)["gif"])
    assert "mp4_url" not in body and "poster_url" not in body and "card_url" not in body
    assert (body["width"], body["height"]) == (160, 90)
    assert "progress" in body and "eta_seconds" in body  # the 202's contract fields stay


def test_queued_and_done_renders_report_their_renditions(client: FlaskClient) -> None:
    done = render_via_api(client, "All of them")
    assert done["renditions"] == {
        "gif": True,
        "mp4": True,
        "poster": True,
        "card": True,
        "thumbnail": True,
    }
    assert done["mp4_url"] and done["gif_url"] and done["poster_url"]


def test_the_result_page_shows_the_gif_and_waits_for_the_mp4(
    client: FlaskClient, gif_only: str
) -> None:
    response = client.get(f"/r/{gif_only}")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    assert "Your GIF is ready!" in html and 'id="result-pending"' not in html
    figure = re.search(r"<figure[^>]*>", html)
    assert figure is not None
    assert f'data-status-url="/api/renders/{gif_only}"' in figure.group(0)
    # No MP4 source yet: the GIF (no poster yet either) is the still until the MP4 lands.
    assert "<source" not in html
    assert f'poster="/media/{media_keys(gif_only)["gif"]}"' in html
    download_mp4 = re.search(r'<a class="button download-mp4"[^>]*>', html)
    assert download_mp4 is not None and " hidden" in download_mp4.group(0)


def test_the_share_page_shows_the_gif_and_waits_for_the_mp4(
    client: FlaskClient, gif_only: str
) -> None:
    response = client.get(f"/s/{gif_only}")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    assert f'data-status-url="/api/renders/{gif_only}"' in html
    assert "<source" not in html


def test_the_gif_downloads_before_the_mp4_exists(client: FlaskClient, gif_only: str) -> None:
    with client.get(f"/d/{gif_only}.gif") as gif:
        assert gif.status_code == 200 and gif.data == GIF
    assert client.get(f"/d/{gif_only}.mp4").status_code == 404
    assert client.get(f"/m/{gif_only}.gif").status_code == 302
    assert client.get(f"/m/{gif_only}.mp4").status_code == 404


def test_a_done_render_pages_play_the_mp4(client: FlaskClient) -> None:
    done = render_via_api(client, "Whole")
    html = client.get(f"/r/{done['key']}").get_data(as_text=True)
    assert f'<source src="{done["mp4_url"]}"' in html and "data-status-url" not in html
    share = client.get(f"/s/{done['key']}").get_data(as_text=True)
    assert f'<source src="{done["mp4_url"]}"' in share and "data-status-url" not in share
