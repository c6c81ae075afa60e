"""The JSON API through Flask's test client: templates, caption checks, renders end to end, every
kind of bad input as a 4xx with a reason, overload (429) and outages (503)."""

from __future__ import annotations

import io
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from loopmark.errors import ConfigInvalid
from loopmark.renderer.render import KEY_CHARS
from loopmark.web.limits import client_address
from tests.site.conftest import (
    MakeApp,
    json_object,
    render_service,
    render_via_api,
    wait_done,
)

UNKNOWN_KEY = "a" * KEY_CHARS


def assert_error(response: TestResponse, status: int, code: str | None = None) -> dict[str, Any]:
    """A JSON error with a code and a human message, and no traceback anywhere."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = json_object(response)["error"]
    assert isinstance(error, dict), error
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code
    assert "Traceback" not in response.get_data(as_text=True)
    return error


def renders_done(app: Flask) -> float:
    value = render_service(app).metrics.renders.labels(result="done")._value.get()
    return float(value)


# -- templates ---------------------------------------------------------------------------------


def test_templates_lists_the_small_template_with_layout_hints(client: FlaskClient) -> None:
    response = client.get("/api/templates")
    assert response.status_code == 200
    items = response.get_json()
    assert [t["id"] for t in items] == ["small"]
    small = items[0]
    assert small["width"] == 160 and small["fps"] == 8 and small["height"] > 0
    assert small["seconds"] > 0
    assert small["caption_mode"] == "free"
    assert small["preview_url"].startswith("/templates/small/")
    assert small["preview_url"].endswith("/preview.mp4")
    assert small["poster_url"].endswith("/poster.jpg")
    text = small["text"]
    x, y, w, h = text["box"]
    assert x + w <= small["width"] and y + h <= small["height"]
    assert text["fill"].startswith("#") and len(text["fill"]) == 7
    assert text["font_url"].startswith("/static/fonts/") and "?v=" in text["font_url"]
    assert text["min_size"] <= text["max_size"]


def test_templates_are_briefly_public_with_an_etag(client: FlaskClient) -> None:
    first = client.get("/api/templates")
    assert first.headers["Cache-Control"].startswith("public, max-age=")
    etag = first.headers["ETag"]
    again = client.get("/api/templates", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""


def test_demo_templates_are_listed(demo_client: FlaskClient) -> None:
    items = demo_client.get("/api/templates").get_json()
    assert {t["id"] for t in items} == {"big-stretch", "head-scratch", "wake-up"}
    assert all("Blender" in t["credit"] for t in items)


# -- caption checks ----------------------------------------------------------------------------


def test_caption_check_normalises_and_counts_graphemes(client: FlaskClient) -> None:
    response = client.post(
        "/api/captions/check", json={"template": "small", "caption": "  Cafe\u0301  👍🏽 "}
    )
    assert response.status_code == 200
    assert response.get_json() == {"ok": True, "caption": "Caf\u00e9 👍🏽", "length": 6}
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("caption", "code"),
    [
        ("", "caption_empty"),
        ("x" * 81, "caption_too_long"),
        ("x" * 100_000, "caption_too_long"),
        ("\u202ekcuf", "caption_control_character"),
        ("f u c k", "caption_profanity"),
    ],
)
def test_caption_check_refuses_with_a_reason(client: FlaskClient, caption: str, code: str) -> None:
    response = client.post("/api/captions/check", json={"template": "small", "caption": caption})
    if len(caption) > 10_000:
        assert_error(response, 413, "body_too_large")  # refused before any parsing
    else:
        assert_error(response, 422, code)


# -- bad input ---------------------------------------------------------------------------------


BAD_BODIES: list[tuple[str, dict[str, Any], int, str]] = [
    ("malformed json", {"data": b"{not json", "content_type": "application/json"}, 400,
     "invalid_json"),
    ("wrong content type", {"data": b"template=small&caption=hi",
                            "content_type": "application/x-www-form-urlencoded"}, 415,
     "unsupported_media_type"),
    ("no content type", {"data": b'{"template": "small", "caption": "hi"}'}, 415,
     "unsupported_media_type"),
    ("json array", {"json": ["small", "hi"]}, 422, "invalid_request"),
    ("json null", {"data": b"null", "content_type": "application/json"}, 422,
     "invalid_request"),
    ("missing caption", {"json": {"template": "small"}}, 422, "invalid_request"),
    ("missing template", {"json": {"caption": "hi"}}, 422, "invalid_request"),
    ("caption not a string", {"json": {"template": "small", "caption": 42}}, 422,
     "invalid_request"),
    ("template not a string", {"json": {"template": ["small"], "caption": "hi"}}, 422,
     "invalid_request"),
    ("empty template", {"json": {"template": "", "caption": "hi"}}, 422, "invalid_request"),
    ("unknown template", {"json": {"template": "nope", "caption": "hi"}}, 422,
     "unknown_template"),
    ("path-like template", {"json": {"template": "../small", "caption": "hi"}}, 422,
     "unknown_template"),
    ("oversize body", {"json": {"template": "small", "caption": "x" * 20_000}}, 413,
     "body_too_large"),
    ("bad utf-8", {"data": b'{"template": "small", "caption": "\xff"}',
                   "content_type": "application/json"}, 400, "invalid_json"),
]  # fmt: skip


@pytest.mark.parametrize("path", ["/api/renders", "/api/captions/check"])
@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [case[1:] for case in BAD_BODIES],
    ids=[case[0] for case in BAD_BODIES],
)
def test_bad_bodies_are_4xx_with_a_reason(
    app: Flask, client: FlaskClient, path: str, kwargs: dict[str, Any], status: int, code: str
) -> None:
    assert_error(client.post(path, **kwargs), status, code)
    assert renders_done(app) == 0
    assert render_service(app).dispatcher.queue_depth() == 0


def test_a_chunked_oversize_body_is_refused(client: FlaskClient) -> None:
    # No Content-Length (a chunked upload): the limit applies while the body is read.
    body = b'{"template": "small", "caption": "' + b"x" * 40_000 + b'"}'
    response = client.post(
        "/api/renders",
        input_stream=io.BytesIO(body),
        content_type="application/json",
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert_error(response, 413, "body_too_large")


@pytest.mark.parametrize(
    "key", ["short", "A" * KEY_CHARS, "a" * (KEY_CHARS + 1), "0" * KEY_CHARS, "a" * 23 + "!"]
)
def test_a_malformed_key_is_a_400(client: FlaskClient, key: str) -> None:
    assert_error(client.get(f"/api/renders/{key}"), 400, "bad_key")


def test_an_unknown_key_is_a_404(client: FlaskClient) -> None:
    assert_error(client.get(f"/api/renders/{UNKNOWN_KEY}"), 404, "unknown_render")


def test_wrong_methods_are_405_in_json(client: FlaskClient) -> None:
    error = assert_error(client.get("/api/renders"), 405, "method_not_allowed")
    assert error["message"]
    assert "POST" in client.get("/api/renders").headers["Allow"]
    assert_error(client.delete(f"/api/renders/{UNKNOWN_KEY}"), 405)


def test_unknown_api_paths_are_404_in_json(client: FlaskClient) -> None:
    assert_error(client.get("/api/nothing"), 404, "not_found")


# -- renders -----------------------------------------------------------------------------------


def test_a_render_end_to_end(app: Flask, client: FlaskClient) -> None:
    response = client.post("/api/renders", json={"template": "small", "caption": "End to end"})
    assert response.status_code in (200, 202)
    assert response.headers["Cache-Control"] == "no-store"
    first = response.get_json()
    key = first["key"]
    assert len(key) == KEY_CHARS
    assert first["result_url"] == f"/r/{key}"
    if response.status_code == 202:
        assert first["status"] in ("queued", "rendering")
        assert 0.0 <= first["progress"] <= 1.0
        assert isinstance(first["position"], int)
        assert response.headers["Location"] == f"/api/renders/{key}"
    done = wait_done(client, key)
    assert done["status"] == "done"
    assert done["key"] == key
    assert done["width"] == 160 and done["height"] > 0
    assert done["caption"] == "End to end"
    assert done["share_url"] == f"http://localhost/s/{key}"
    assert done["gif_url"] == f"/media/r/{key[:2]}/{key}/loop.gif"
    polled = client.get(f"/api/renders/{key}")
    assert polled.headers["Cache-Control"] == "public, max-age=60"

    with client.get(done["gif_url"]) as gif:
        assert gif.status_code == 200
        assert gif.data[:6] == b"GIF89a"
        assert gif.mimetype == "image/gif"
        assert gif.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    with client.get(done["mp4_url"]) as mp4:
        assert mp4.mimetype == "video/mp4"
    with client.get(done["poster_url"]) as poster:
        assert poster.data[:3] == b"\xff\xd8\xff"

    # The same caption again is the cached render, at once.
    again = client.post("/api/renders", json={"template": "small", "caption": "End to end"})
    assert again.status_code == 200
    assert again.get_json()["key"] == key
    assert again.headers["Cache-Control"] == "no-store"
    assert renders_done(app) == 1


def test_fifty_identical_posts_render_once(make_app: MakeApp) -> None:
    app = make_app(RENDER_HOLD_SLOTS=50, LOOPMARK_RATE_LIMITS="off")
    barrier = threading.Barrier(50)

    def post(_: int) -> tuple[int, str]:
        client = app.test_client()
        barrier.wait()
        response = client.post("/api/renders", json={"template": "small", "caption": "All at once"})
        return response.status_code, response.get_json()["key"]

    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(post, range(50)))
    assert {status for status, _ in answers} <= {200, 202}
    keys = {key for _, key in answers}
    assert len(keys) == 1
    wait_done(app.test_client(), keys.pop())
    assert renders_done(app) == 1


def test_a_full_queue_answers_429_with_retry_after(make_app: MakeApp) -> None:
    app = make_app(
        LOOPMARK_QUEUE_SIZE="1", LOOPMARK_RENDER_CONCURRENCY="1", RENDER_WAIT_SECONDS=0.0
    )
    client = app.test_client()
    # One worker and one queue slot: distinct captions posted back to back overflow the queue
    # long before the worker (an FFmpeg run each) catches up.
    statuses = []
    for i in range(20):
        response = client.post("/api/renders", json={"template": "small", "caption": f"Q{i}"})
        statuses.append(response.status_code)
        if response.status_code == 429:
            error = assert_error(response, 429, "queue_full")
            assert error["message"]
            assert int(response.headers["Retry-After"]) >= 1
            assert response.headers["Cache-Control"] == "no-store"
            break
    assert statuses[-1] == 429, statuses
    assert set(statuses[:-1]) <= {200, 202}


def test_a_storage_outage_is_a_503_and_the_next_request_succeeds(
    app: Flask, client: FlaskClient
) -> None:
    media = Path(str(render_service(app).blobs.root))  # type: ignore[attr-defined]
    shutil.rmtree(media)
    media.write_text("storage is down")  # every write under it now fails for real
    response = client.post("/api/renders", json={"template": "small", "caption": "Outage"})
    if response.status_code == 202:
        key = response.get_json()["key"]
        while response.status_code == 202:
            response = client.get(f"/api/renders/{key}")
    assert_error(response, 503, "storage_unavailable")
    assert int(response.headers["Retry-After"]) >= 1
    assert renders_done(app) == 0

    media.unlink()
    media.mkdir()  # storage is back
    done = render_via_api(client, "Outage")
    with client.get(done["gif_url"]) as gif:
        assert gif.data[:6] == b"GIF89a"


def test_a_records_outage_is_a_503(app: Flask, client: FlaskClient, tmp_path: Path) -> None:
    records = render_service(app).records
    records.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp_path / 'loopmark.db'}{suffix}").unlink(missing_ok=True)
    response = client.get(f"/api/renders/{UNKNOWN_KEY}")
    assert_error(response, 503, "records_unavailable")
    assert response.headers["Retry-After"] == "5"
    posted = client.post("/api/renders", json={"template": "small", "caption": "No records"})
    assert_error(posted, 503, "records_unavailable")


def test_a_taken_down_render_is_410(app: Flask, client: FlaskClient) -> None:
    done = render_via_api(client, "Taken down")
    render_service(app).records.block(done["key"], reason="test")
    assert_error(client.get(f"/api/renders/{done['key']}"), 410, "render_blocked")
    posted = client.post("/api/renders", json={"template": "small", "caption": "Taken down"})
    assert_error(posted, 410, "render_blocked")


def test_media_base_url_prefixes_the_media_urls(make_app: MakeApp) -> None:
    app = make_app(LOOPMARK_MEDIA_BASE_URL="https://cdn.example/")
    done = render_via_api(app.test_client(), "Through the CDN")
    for kind in ("gif_url", "mp4_url", "poster_url"):
        assert done[kind].startswith("https://cdn.example/r/")
    assert done["gif_url"].endswith(f"/{done['key']}/loop.gif")


def test_site_url_makes_share_links_absolute(make_app: MakeApp) -> None:
    app = make_app(LOOPMARK_SITE_URL="https://gifs.example/")
    done = render_via_api(app.test_client(), "Shared")
    assert done["share_url"] == f"https://gifs.example/s/{done['key']}"


# -- rate limits -------------------------------------------------------------------------------


def test_caption_checks_are_rate_limited_per_client(make_app: MakeApp) -> None:
    app = make_app(LOOPMARK_RATE_LIMIT_CAPTIONS="2/minute")
    client = app.test_client()
    body = {"template": "small", "caption": "Hi"}
    for _ in range(2):
        assert client.post("/api/captions/check", json=body).status_code == 200
    limited = client.post("/api/captions/check", json=body)
    assert_error(limited, 429, "rate_limited")
    assert 1 <= int(limited.headers["Retry-After"]) <= 61
    other = app.test_client().post(
        "/api/captions/check", json=body, environ_base={"REMOTE_ADDR": "192.0.2.7"}
    )
    assert other.status_code == 200
    # Polling and the template list are not limited.
    assert client.get("/api/templates").status_code == 200


def test_renders_are_rate_limited_per_client(make_app: MakeApp) -> None:
    app = make_app(RENDER_RATE_LIMIT="1/minute", RENDER_WAIT_SECONDS=0.0)
    client = app.test_client()
    first = client.post("/api/renders", json={"template": "small", "caption": "One"})
    assert first.status_code in (200, 202)
    assert_error(client.post("/api/renders", json={"template": "small", "caption": "Two"}), 429)
    wait_done(client, first.get_json()["key"])


@pytest.mark.parametrize(
    "setting",
    [
        {"LOOPMARK_RATE_LIMIT_RENDERS": "lots"},
        {"LOOPMARK_RATE_LIMIT_CAPTIONS": "5 per fortnight"},
        {"LOOPMARK_SITE_URL": "gifs.example"},
        {"LOOPMARK_PROXY_HOPS": "two"},
    ],
)
def test_malformed_site_settings_fail_at_start(make_app: MakeApp, setting: dict[str, str]) -> None:
    with pytest.raises(ConfigInvalid):
        make_app(**setting)


def test_without_a_free_hold_slot_a_new_render_answers_202_at_once(make_app: MakeApp) -> None:
    app = make_app(RENDER_HOLD_SLOTS=0)
    client = app.test_client()
    response = client.post("/api/renders", json={"template": "small", "caption": "No hold"})
    assert response.status_code == 202
    assert response.get_json()["status"] in ("queued", "rendering")
    wait_done(client, response.get_json()["key"])


@pytest.mark.parametrize(
    ("remote", "client_id"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:198.51.100.4", "198.51.100.4"),
    ],
)
def test_clients_are_counted_by_address_or_ipv6_64(app: Flask, remote: str, client_id: str) -> None:
    with app.test_request_context(environ_base={"REMOTE_ADDR": remote}):
        assert client_address() == client_id


@pytest.mark.parametrize("path", ["/api/captions/check", "/api/renders"])
def test_json_nested_thousands_deep_is_a_400(client: FlaskClient, path: str) -> None:
    body = "[" * 5000 + "]" * 5000
    response = client.post(path, data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"]
