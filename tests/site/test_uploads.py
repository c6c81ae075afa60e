"""Visitor uploads over the API (issue 13): declare, upload, render a trim, poll; one-shot convert;
and every refusal a clear 4xx. Real multipart bodies through Flask's client, real FFmpeg, real
SQLite, the local render pool."""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from urllib3 import encode_multipart_formdata

from loopmark.brand import DEMO_BRAND_FILE
from loopmark.renderer.clip import is_clip_id
from loopmark.service.uploads import source_key
from tests.pixels import pixel
from tests.renderer import hostile_videos as hv
from tests.site.conftest import MakeApp, json_object, site_services, wait_done

VISITOR = "X-Loopmark-Visitor"


def declare(client: FlaskClient, path: Path, **headers: str) -> dict[str, Any]:
    response = client.post(
        "/api/uploads",
        json={"filename": path.name, "content_type": "video/mp4", "size": path.stat().st_size},
        headers=headers,
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return json_object(response)


def multipart(fields: dict[str, str], data: bytes, name: str = "clip.mp4") -> dict[str, Any]:
    """A real multipart body (fields first, the file last), encoded in memory: Werkzeug's test
    builder would spool a big one to a temporary file it never closes."""
    body, content_type = encode_multipart_formdata(
        [*fields.items(), ("file", (name, data, "video/mp4"))]
    )
    return {"data": body, "content_type": content_type}


def send(client: FlaskClient, ticket: dict[str, Any], data: bytes, name: str = "clip.mp4") -> Any:
    return client.post(ticket["upload"]["url"], **multipart(ticket["upload"]["fields"], data, name))


def upload(client: FlaskClient, path: Path, **headers: str) -> str:
    ticket = declare(client, path, **headers)
    response = send(client, ticket, path.read_bytes())
    assert response.status_code == 201, response.get_data(as_text=True)
    return str(ticket["id"])


def render(client: FlaskClient, upload_id: str, **fields: Any) -> Any:
    body = {"upload": upload_id, "start": 1.0, "duration": 1.0, **fields}
    return client.post("/api/renders", json=body)


def done_json(client: FlaskClient, response: Any) -> dict[str, Any]:
    assert response.status_code in (200, 202), response.get_data(as_text=True)
    body = response.get_json()
    return body if response.status_code == 200 else wait_done(client, body["key"])


def fetch(client: FlaskClient, url: str) -> tuple[int, bytes]:
    with client.get(url) as response:
        return response.status_code, response.data


def error_code(response: Any) -> str:
    return str(response.get_json()["error"]["code"])


# -- the journey -------------------------------------------------------------------------------


def test_declare_answers_the_contract(client: FlaskClient, clip: Path) -> None:
    ticket = declare(client, clip)
    assert set(ticket) == {"id", "upload", "max_bytes", "expires_in"}
    assert ticket["max_bytes"] == 50 * 1024 * 1024
    assert ticket["expires_in"] > 0
    assert ticket["upload"]["url"].startswith("/api/uploads/")
    assert isinstance(ticket["upload"]["fields"], dict)


def test_upload_then_render_a_trim_gives_gif_mp4_thumbnail(
    app: Flask, client: FlaskClient, clip: Path
) -> None:
    upload_id = upload(client, clip)
    body = done_json(client, render(client, upload_id, caption="Hello clip"))
    assert body["status"] == "done"
    assert is_clip_id(body["template"])
    assert body["caption"] == "Hello clip"
    # 1280×720 source: landscape, 480 px wide; 1 s at 12 fps.
    assert (body["width"], body["height"]) == (480, 270)
    status, gif = fetch(client, body["gif_url"])
    assert status == 200 and gif[:6] == b"GIF89a"
    assert fetch(client, body["mp4_url"])[0] == 200
    status, thumb = fetch(client, body["thumbnail_url"])
    assert status == 200
    with Image.open(io.BytesIO(thumb)) as image:
        assert image.format == "JPEG" and image.width == 320
    # Processed: the uploaded file is deleted (its prepared frames stay).
    blobs = site_services(app).render.blobs
    assert not blobs.exists(source_key(_hex_of(app, upload_id)))


def test_same_clip_and_choices_never_render_twice(
    app: Flask, client: FlaskClient, clip: Path
) -> None:
    first = done_json(client, render(client, upload(client, clip), caption="Twice"))
    # Another visitor uploads the same bytes and asks for the same trim and caption.
    second = upload(client, clip)
    again = render(client, second, caption="Twice")
    assert again.status_code == 200
    assert again.get_json()["key"] == first["key"]
    # Answered from the cache, that upload is processed too: not kept.
    blobs = site_services(app).render.blobs
    assert not blobs.exists(source_key(_hex_of(app, second)))
    # A new caption on the processed clip still renders (its frames are prepared).
    other = done_json(client, render(client, upload(client, clip), caption="Other"))
    assert other["key"] != first["key"] and other["template"] == first["template"]


def test_caption_is_optional(client: FlaskClient, clip: Path) -> None:
    body = done_json(client, render(client, upload(client, clip), start=2.0))
    assert body["status"] == "done" and body["caption"] == ""


def test_convert_in_one_multipart_request(client: FlaskClient, clip: Path) -> None:
    fields = {"start": "0.5", "duration": "1", "caption": "One shot"}
    response = client.post("/api/convert", **multipart(fields, clip.read_bytes()))
    body = done_json(client, response)
    assert body["caption"] == "One shot"
    assert fetch(client, body["gif_url"])[0] == 200


def test_template_renders_gain_a_thumbnail(client: FlaskClient) -> None:
    response = client.post("/api/renders", json={"template": "small", "caption": "Thumb"})
    body = done_json(client, response)
    _status, thumb = fetch(client, body["thumbnail_url"])
    with Image.open(io.BytesIO(thumb)) as image:
        assert image.format == "JPEG" and image.width == 160  # never wider than the GIF


# -- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "status", "code"),
    [
        ({"content_type": "video/mp4", "size": 51 * 1024 * 1024}, 413, "video_too_large"),
        ({"content_type": "text/html", "size": 1000}, 415, "video_unsupported"),
        ({"content_type": "image/png", "size": 1000}, 415, "video_unsupported"),
        ({"content_type": "video/mp4", "size": 0}, 415, "video_unsupported"),
        ({"content_type": "video/mp4", "size": "10"}, 422, "invalid_request"),
        ({"content_type": "video/mp4", "size": True}, 422, "invalid_request"),
    ],
)
def test_declared_size_or_type_refused(
    client: FlaskClient, declared: dict[str, Any], status: int, code: str
) -> None:
    response = client.post("/api/uploads", json={"filename": "a.mp4", **declared})
    assert response.status_code == status
    assert error_code(response) == code


def test_file_larger_than_declared_is_refused_before_it_is_stored(
    app: Flask, client: FlaskClient, clip: Path
) -> None:
    response = client.post(
        "/api/uploads", json={"filename": "a.mp4", "content_type": "video/mp4", "size": 1000}
    )
    ticket = response.get_json()
    sent = send(client, ticket, clip.read_bytes())
    assert sent.status_code == 413
    assert not list(site_services(app).render.blobs.list("incoming/"))


def test_upload_url_with_a_forged_token(client: FlaskClient, clip: Path) -> None:
    ticket = declare(client, clip)
    forged = {**ticket, "upload": {**ticket["upload"], "url": ticket["upload"]["url"] + "x"}}
    assert send(client, forged, clip.read_bytes()).status_code == 403


HOSTILE = {
    "hls_playlist": (hv.hls_playlist, "video_unsupported"),
    "ffconcat": (hv.ffconcat_script, "video_unsupported"),
    "ten_hours": (hv.ten_hour_video, "video_too_long"),
    "8192x8192": (hv.huge_frame_video, "video_unsupported"),
    "gif_screen_bomb": (hv.gif_screen_bomb, "video_unsupported"),
    "gif_frame_bomb": (hv.gif_frame_bomb, "video_unsupported"),
    "truncated": (lambda folder: hv.truncated_mp4(folder, faststart=True), "video_unsupported"),
    "audio_only": (hv.audio_only, "video_unsupported"),
    "html": (hv.text_file, "video_unsupported"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_files_are_refused_with_a_reason_and_not_kept(
    app: Flask, client: FlaskClient, tmp_path: Path, name: str
) -> None:
    make, code = HOSTILE[name]
    path = make(tmp_path)
    ticket = declare(client, path)
    started = time.monotonic()
    response = send(client, ticket, path.read_bytes())
    assert time.monotonic() - started < 10
    assert response.status_code in (413, 422), response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"]["message"]
    if response.status_code == 422:
        assert body["error"]["code"].startswith("video_"), body
        assert body["error"]["code"] == code or code == "video_unsupported"
    assert not list(site_services(app).render.blobs.list("incoming/"))
    # Its id renders nothing.
    assert render(client, ticket["id"]).status_code == 404


def test_png_and_empty_file_renamed_mp4(client: FlaskClient, tmp_path: Path) -> None:
    png = io.BytesIO()
    Image.new("RGB", (16, 16)).save(png, "PNG")
    for data in (png.getvalue(), b"<html><body>hi</body></html>"):
        response = send(client, declare_bytes(client, len(data)), data)
        assert response.status_code == 422 and error_code(response) == "video_unsupported"
    response = send(client, declare_bytes(client, 10), b"")
    assert response.status_code == 422 or response.status_code == 400


def declare_bytes(client: FlaskClient, size: int) -> dict[str, Any]:
    response = client.post(
        "/api/uploads", json={"filename": "x.mp4", "content_type": "video/mp4", "size": size}
    )
    return json_object(response)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"start": -1.0}, "clip_out_of_range"),
        ({"start": 5.5}, "clip_out_of_range"),
        ({"start": 4.9, "duration": 3.0}, "clip_out_of_range"),
        ({"duration": 0.0}, "clip_out_of_range"),
        ({"duration": 7.0}, "clip_out_of_range"),  # LOOPMARK_UPLOAD_MAX_SECONDS is 6
        ({"duration": 1e308}, "clip_out_of_range"),
        ({"start": "1"}, "invalid_request"),
        ({"start": None}, "invalid_request"),
        ({"caption": 7}, "invalid_request"),
    ],
)
def test_bad_trims_are_422(
    client: FlaskClient, clip: Path, fields: dict[str, Any], code: str
) -> None:
    response = render(client, upload(client, clip), **fields)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert error_code(response) == code


def test_nan_is_refused(client: FlaskClient, clip: Path) -> None:
    upload_id = upload(client, clip)
    raw = '{"upload": "' + upload_id + '", "start": NaN, "duration": 1}'
    response = client.post("/api/renders", data=raw, content_type="application/json")
    assert response.status_code in (400, 422)


def test_unknown_forged_and_foreign_ids(client: FlaskClient, clip: Path) -> None:
    assert error_code(render(client, "nonsense")) == "unknown_upload"
    assert render(client, "nonsense").status_code == 404
    alice = client.get("/api/visitor").get_json()["token"]
    bob = client.get("/api/visitor").get_json()["token"]
    upload_id = upload(client, clip, **{VISITOR: alice})
    foreign = client.post(
        "/api/renders",
        json={"upload": upload_id, "start": 1, "duration": 1},
        headers={VISITOR: bob},
    )
    assert foreign.status_code == 403
    anonymous = client.post("/api/renders", json={"upload": upload_id, "start": 1, "duration": 1})
    assert anonymous.status_code == 403
    # Declared but never uploaded.
    ticket = declare(client, clip)
    assert render(client, ticket["id"]).status_code == 404


def test_expired_id(make_app: MakeApp, clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_app().test_client()
    upload_id = upload(client, clip)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 2 * 3600)
    response = render(client, upload_id)
    assert response.status_code == 404
    assert "expired" in response.get_json()["error"]["message"]


def test_uploads_can_be_switched_off(make_app: MakeApp, clip: Path) -> None:
    client = make_app(LOOPMARK_UPLOADS="off").test_client()
    response = client.post(
        "/api/uploads", json={"filename": "a.mp4", "content_type": "video/mp4", "size": 10}
    )
    assert response.status_code in (404, 405)
    assert render(client, "x").status_code == 404


def _hex_of(app: Flask, signed: str) -> str:
    from itsdangerous import URLSafeTimedSerializer

    from loopmark.site.uploads import ID_SALT

    upload_id, _owner = URLSafeTimedSerializer(str(app.secret_key), salt=ID_SALT).loads(signed)
    return str(upload_id)


def test_refusals_speak_the_visitors_language(client: FlaskClient, clip: Path) -> None:
    """The probe's, the upload routes' and the trim's refusals in German; codes unchanged."""
    german = {"Accept-Language": "de"}
    html = b"<html><body>hi</body></html>"
    refused = send(client, declare_bytes(client, len(html)), html)
    assert refused.status_code == 422 and error_code(refused) == "video_unsupported"
    assert refused.get_json()["error"]["message"] != ""
    ticket = declare(client, clip)
    forged = {**ticket, "upload": {**ticket["upload"], "url": ticket["upload"]["url"] + "x"}}
    body = multipart(forged["upload"]["fields"], clip.read_bytes())
    response = client.post(forged["upload"]["url"], headers=german, **body)
    assert response.status_code == 403 and error_code(response) == "upload_forbidden"
    assert response.get_json()["error"]["message"] == "Diese Upload-Adresse ist ungültig."
    upload_id = upload(client, clip)
    late = client.post(
        "/api/renders", json={"upload": upload_id, "start": 5.5, "duration": 1.0}, headers=german
    )
    assert late.status_code == 422 and error_code(late) == "clip_out_of_range"
    assert late.get_json()["error"]["message"].startswith("Der Anfang muss zwischen 0 und ")


def test_the_probes_refusals_are_translated(client: FlaskClient, tmp_path: Path) -> None:
    playlist = hv.hls_playlist(tmp_path)
    data = playlist.read_bytes()
    ticket = declare_bytes(client, len(data))
    body = multipart(ticket["upload"]["fields"], data)
    response = client.post(ticket["upload"]["url"], headers={"Accept-Language": "de"}, **body)
    assert response.status_code == 422 and error_code(response) == "video_unsupported"
    assert response.get_json()["error"]["message"] == "Diese Datei ist eine Playlist, kein Video."


def test_an_upload_gets_the_brands_default_frame_and_it_is_in_the_key(
    make_app: MakeApp, clip: Path, tmp_path: Path
) -> None:
    # Another brand: the demo brand with a plain red border as its default frame.
    folder = tmp_path / "red-brand"
    shutil.copytree(DEMO_BRAND_FILE.parent, folder)
    red = Image.new("RGBA", (960, 540), (255, 0, 0, 255))
    red.paste((0, 0, 0, 0), (40, 40, 920, 500))
    red.save(folder / "frame.png")
    red_app = make_app(LOOPMARK_BRAND_FILE=str(folder / "brand.toml"))
    demo_app = make_app()  # Hop & Co.: an orange border (#ff7a1a)
    done = {}
    for name, app in (("red", red_app), ("demo", demo_app)):
        client = app.test_client()
        done[name] = done_json(client, render(client, upload(client, clip), caption="Framed"))
        status, gif = fetch(client, done[name]["gif_url"])
        assert status == 200
        with Image.open(io.BytesIO(gif)) as image:
            edge = pixel(image.convert("RGB"), (2, image.height // 2))
        expected = (255, 0, 0) if name == "red" else (255, 122, 26)
        assert all(abs(a - b) <= 24 for a, b in zip(edge, expected, strict=True)), (name, edge)
    # The same clip, trim and caption under another frame is another render.
    assert done["red"]["template"] == done["demo"]["template"]
    assert done["red"]["key"] != done["demo"]["key"]
