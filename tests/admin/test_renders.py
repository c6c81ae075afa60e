"""Renders in the admin: listing, search, paging, gallery curation and the take-down."""

from __future__ import annotations

import base64
import hashlib
import re
import time

from flask import Flask
from flask.testing import FlaskClient

from loopmark.admin.views.gallery import moved
from loopmark.admin.views.renders import PAGE_SIZE
from loopmark.records.renders import RenderStatus
from loopmark.service.render_service import media_keys
from tests.admin.conftest import admin, csrf_from, page_token, post, site
from tests.site.conftest import render_via_api


def fake_key(seed: str) -> str:
    return base64.b32encode(hashlib.sha256(seed.encode()).digest()).decode().lower()[:24]


def add_done(app: Flask, caption: str, template_id: str = "small") -> str:
    """A done render record (no media files): enough for lists, search and the gallery."""
    records = site(app).render.records
    key = fake_key(caption + template_id)
    assert records.claim_lease(
        key, owner="test", template_id=template_id, caption=caption, lease_seconds=60
    )
    assert records.complete(key, owner="test", media={"width": 160, "height": 90, "frames": 8})
    return key


def captions_on(html: str) -> list[str]:
    return re.findall(r'<td class="caption"><a href="[^"]+">([^<]+)</a>', html)


def gallery_keys(app: Flask) -> list[str]:
    return [entry.key for entry in admin(app).gallery.entries()]


def test_recent_renders_newest_first_searchable(app: Flask, admin_client: FlaskClient) -> None:
    for caption in ("Monday again", "Happy Friday", "monday blues"):
        add_done(app, caption)
        time.sleep(0.01)  # distinct updated_at, so the order is defined
    html = admin_client.get("/admin/").get_data(as_text=True)
    assert captions_on(html) == ["monday blues", "Happy Friday", "Monday again"]
    found = admin_client.get("/admin/?q=MONDAY").get_data(as_text=True)
    assert captions_on(found) == ["monday blues", "Monday again"]
    none = admin_client.get("/admin/?q=MONDAY&template=other").get_data(as_text=True)
    assert captions_on(none) == ["monday blues", "Monday again"]  # unknown template: ignored
    assert "No render matches." in admin_client.get("/admin/?q=tuesday").get_data(as_text=True)


def test_renders_are_paged_by_time(app: Flask, admin_client: FlaskClient) -> None:
    for number in range(PAGE_SIZE + 3):
        add_done(app, f"caption {number:02d}")
        time.sleep(0.002)
    first = admin_client.get("/admin/").get_data(as_text=True)
    assert len(captions_on(first)) == PAGE_SIZE
    older = re.search(r'<a href="([^"]+)" rel="next">', first)
    assert older is not None
    second = admin_client.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert captions_on(second) == ["caption 02", "caption 01", "caption 00"]
    assert 'rel="next"' not in second


def test_gallery_add_reorder_remove(app: Flask, admin_client: FlaskClient) -> None:
    keys = [add_done(app, caption) for caption in ("one", "two", "three")]
    for key in keys:
        response = post(admin_client, "/admin/gallery/add", {"key": key, "back": "/admin/"})
        assert response.status_code == 303
        assert response.location == "/admin/"
    assert gallery_keys(app) == keys
    post(admin_client, "/admin/gallery/move", {"key": keys[2], "direction": "up"})
    assert gallery_keys(app) == [keys[0], keys[2], keys[1]]
    post(admin_client, "/admin/gallery/move", {"key": keys[1], "direction": "top"})
    assert gallery_keys(app) == [keys[1], keys[0], keys[2]]
    post(admin_client, "/admin/gallery/move", {"key": keys[1], "direction": "down"})
    assert gallery_keys(app) == [keys[0], keys[1], keys[2]]
    page = admin_client.get("/admin/gallery").get_data(as_text=True)
    assert page.index("one") < page.index("two") < page.index("three")
    post(admin_client, "/admin/gallery/remove", {"key": keys[1]})
    assert gallery_keys(app) == [keys[0], keys[2]]


def test_gallery_move_by_script_answers_the_new_order(
    app: Flask, admin_client: FlaskClient
) -> None:
    keys = [add_done(app, caption) for caption in ("one", "two", "three")]
    for key in keys:
        post(admin_client, "/admin/gallery/add", {"key": key})
    token = page_token(admin_client, "/admin/gallery")
    json_headers = {"Accept": "application/json"}

    def move(key: str, direction: str) -> tuple[int, dict[str, object]]:
        response = admin_client.post(
            "/admin/gallery/move",
            data={"key": key, "direction": direction, "csrf_token": token},
            headers=json_headers,
        )
        return response.status_code, response.get_json()

    assert move(keys[2], "top") == (200, {"order": [keys[2], keys[0], keys[1]]})
    assert gallery_keys(app) == [keys[2], keys[0], keys[1]]
    status, body = move(fake_key("never curated"), "up")
    assert status == 409 and "no longer in the gallery" in str(body["error"])
    status, body = move(keys[0], "sideways")
    assert status == 400 and body["error"]
    assert gallery_keys(app) == [keys[2], keys[0], keys[1]]


def test_gallery_refuses_a_render_that_is_not_done(app: Flask, admin_client: FlaskClient) -> None:
    records = site(app).render.records
    key = fake_key("still rendering")
    records.claim_lease(key, owner="t", template_id="small", caption="wip", lease_seconds=60)
    response = post(admin_client, "/admin/gallery/add", {"key": key}, follow_redirects=True)
    assert "only a done render can join the gallery" in response.get_data(as_text=True)
    assert gallery_keys(app) == []


def test_a_post_without_the_token_changes_nothing(app: Flask, admin_client: FlaskClient) -> None:
    key = add_done(app, "keep me")
    post(admin_client, "/admin/gallery/add", {"key": key})
    # What a cross-site form would send: the cookie (were it sent at all) but no token.
    response = admin_client.post(
        "/admin/gallery/remove",
        data={"key": key},
        headers={"Origin": "https://evil.example", "Referer": "https://evil.example/"},
    )
    assert response.status_code == 400
    assert gallery_keys(app) == [key]


def test_moved() -> None:
    assert moved(["a", "b", "c"], "a", "up") == ["a", "b", "c"]
    assert moved(["a", "b", "c"], "c", "down") == ["a", "b", "c"]
    assert moved(["a", "b", "c"], "c", "top") == ["c", "a", "b"]
    assert moved(["a", "b", "c"], "a", "bottom") == ["b", "c", "a"]


def test_take_down_removes_media_blocks_key_and_leaves_gallery(
    app: Flask, admin_client: FlaskClient
) -> None:
    done = render_via_api(admin_client, "Take me down")
    key = done["key"]
    blobs = site(app).render.blobs
    paths = [blobs.path(storage_key) for storage_key in media_keys(key).values()]  # type: ignore[attr-defined]
    assert all(path.is_file() for path in paths)
    post(admin_client, "/admin/gallery/add", {"key": key})
    assert gallery_keys(app) == [key]

    detail = admin_client.get(f"/admin/renders/{key}")
    assert "Take me down" in detail.get_data(as_text=True)
    response = admin_client.post(
        f"/admin/renders/{key}/take-down",
        data={"reason": "reported as offensive", "csrf_token": csrf_from(detail)},
    )
    assert response.status_code == 303

    assert not any(path.exists() for path in paths)
    record = site(app).render.records.get(key)
    assert record is not None and record.status == RenderStatus.BLOCKED
    assert "reported as offensive" in (record.error or "")
    assert gallery_keys(app) == []
    # Never again: not the render API, not the short links, not the admin's gallery.
    again = admin_client.post("/api/renders", json={"template": "small", "caption": "Take me down"})
    assert again.status_code == 410
    assert admin_client.get(f"/m/{key}.gif").status_code == 410
    page = admin_client.get(f"/admin/renders/{key}").get_data(as_text=True)
    assert "Taken down: reported as offensive" in page
    add = post(admin_client, "/admin/gallery/add", {"key": key}, follow_redirects=True)
    assert "only a done render can join the gallery" in add.get_data(as_text=True)


def test_take_down_by_pasted_link(app: Flask, admin_client: FlaskClient) -> None:
    key = add_done(app, "pasted")
    response = post(
        admin_client,
        "/admin/renders/take-down",
        {"target": f"  https://hop.example/s/{key}?utm_source=x ", "reason": "legal request"},
    )
    assert response.location == f"/admin/renders/{key}"
    record = site(app).render.records.get(key)
    assert record is not None and record.status == RenderStatus.BLOCKED


def test_take_down_needs_a_reason(app: Flask, admin_client: FlaskClient) -> None:
    key = add_done(app, "no reason")
    token = page_token(admin_client, f"/admin/renders/{key}")
    response = admin_client.post(
        f"/admin/renders/{key}/take-down", data={"reason": " ", "csrf_token": token}
    )
    assert response.status_code == 303
    record = site(app).render.records.get(key)
    assert record is not None and record.status == RenderStatus.DONE


def test_unknown_render_is_404(admin_client: FlaskClient) -> None:
    assert admin_client.get(f"/admin/renders/{fake_key('nothing')}").status_code == 404
    assert admin_client.get("/admin/renders/not-a-key").status_code == 404


def test_visitor_uploads_are_marked_and_never_in_the_gallery_by_themselves(
    app: Flask, admin_client: FlaskClient
) -> None:
    key = add_done(app, "From a phone", template_id="u-" + "0" * 32)
    add_done(app, "From a template")
    html = admin_client.get("/admin/").get_data(as_text=True)
    row = html[html.index("From a phone") :].split("</tr>")[0]
    assert "visitor upload" in row and "u-000" not in row
    template_row = html[html.index("From a template") :].split("</tr>")[0]
    assert "visitor upload" not in template_row
    assert key not in gallery_keys(app)


def test_a_render_shows_what_its_size_budget_did(app: Flask, admin_client: FlaskClient) -> None:
    records = site(app).render.records
    shown = {}
    for caption, budget in [
        ("Within", {"max_bytes": 8_000_000, "fits": True, "stepped": False}),
        ("Stepped", {"max_bytes": 50_000, "fits": True, "stepped": True}),
        ("Still over", {"max_bytes": 50_000, "fits": False, "stepped": True}),
    ]:
        key = fake_key(caption)
        assert records.claim_lease(
            key, owner="test", template_id="small", caption=caption, lease_seconds=60
        )
        gif = {"frames": 4, "width": 128, "height": 72, "bytes": 40_000, "full_bytes": 68_000}
        media = {"width": 160, "height": 90, "frames": 8, "bytes": 40_000}
        assert records.complete(key, owner="test", media={**media, "budget": {**budget, **gif}})
        page = admin_client.get(f"/admin/renders/{key}").get_data(as_text=True)
        shown[caption] = re.sub(r"\s+", " ", page)
    assert "160×90, 8 frames" in shown["Within"] and "8,000,000 bytes: within it" in shown["Within"]
    # A stepped GIF has its own size and frames; the render's (MP4, poster) are not the GIF's.
    assert "128×72, 4 frames, 40,000 bytes" in shown["Stepped"]
    assert "50,000 bytes: made smaller to fit (68,000 bytes in full)" in shown["Stepped"]
    assert "still over at the smallest step" in shown["Still over"]
