"""Templates in the admin: drafts and publishing, plain refusals next to their fields, uploads
prepared in the background, trim, speed and direction edited and prepared again."""

from __future__ import annotations

import io
import re
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import FileStorage
from werkzeug.test import TestResponse

from loopmark.admin.preparation import preparations
from loopmark.admin.template_files import caption_fonts
from loopmark.admin.views.templates import UPLOAD_MAX_BYTES
from tests.admin.conftest import csrf_from, page_token, post, post_files, site

PREPARE_SECONDS = 120.0
CREDIT = "Big Buck Bunny © Blender Foundation, CC-BY 3.0"


def templates_dir(app: Flask) -> Path:
    return site(app).settings.templates_dir


def toml_of(app: Flask, template_id: str = "small") -> dict[str, Any]:
    return tomllib.loads((templates_dir(app) / template_id / "template.toml").read_text())


def public_ids(client: FlaskClient) -> list[str]:
    return [t["id"] for t in client.get("/api/templates").get_json()]


def edit_form(client: FlaskClient, **changes: object) -> dict[str, object]:
    page = client.get("/admin/templates/small")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "data-admin-preview" in html
    fields = {
        "name": "Small",
        "credit": CREDIT,
        "caption_mode": "free",
        "captions": "Hello\nHop on",
        "box_x": 8,
        "box_y": 50,
        "box_w": 144,
        "box_h": 36,
        "font": "NotoSans-Bold.ttf",
        "fill": "#ffcc00",
        "stroke": "#000000",
        "stroke_width": 2,
        "align": "center",
        "max_lines": 2,
        "max_size": 24,
        "min_size": 10,
        "loop": "forward",
        "speed": "1",
        "trim_start": "1",
        "trim_duration": "1",
        "csrf_token": csrf_from(page),
    }
    return {**fields, **changes}


def test_unpublish_makes_a_draft_visitors_never_see(app: Flask, admin_client: FlaskClient) -> None:
    assert public_ids(admin_client) == ["small"]
    before = admin_client.get("/api/templates").get_json()[0]
    post(admin_client, "/admin/templates/small/unpublish", token_from="/admin/templates")
    assert toml_of(app)["enabled"] is False
    assert public_ids(admin_client) == []
    assert "Draft" in admin_client.get("/admin/templates").get_data(as_text=True)
    # Not listed, not rendered, no public preview; GraphQL leaves it out too.
    refused = admin_client.post("/api/renders", json={"template": "small", "caption": "Hi"})
    assert refused.status_code in (404, 422), refused.status_code
    hidden = admin_client.get(before["preview_url"])
    assert hidden.status_code == 404
    hidden.close()
    listed = admin_client.post("/graphql", json={"query": "{ templates { id } }"}).get_json()
    assert listed["data"]["templates"] == []
    # The admin still previews it.
    for name in ("preview.mp4", "poster.jpg"):
        response = admin_client.get(f"/admin/templates/small/{name}")
        assert response.status_code == 200 and len(response.data) > 1000
        response.close()


def test_publishing_needs_a_credit_line(app: Flask, admin_client: FlaskClient) -> None:
    post(admin_client, "/admin/templates/small/unpublish", token_from="/admin/templates")
    refused = post(admin_client, "/admin/templates/small/publish", token_from="/admin/templates")
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert "needs a credit line" in html or "Add a credit line" in html
    assert re.search(r'<input[^>]*aria-invalid="true"[^>]*id="credit"', html)
    assert toml_of(app)["enabled"] is False and public_ids(admin_client) == []
    # "Save and publish" with an empty credit is refused the same way.
    form = edit_form(admin_client, credit="", publish="1")
    response = admin_client.post("/admin/templates/small", data=form)
    assert response.status_code == 422
    assert toml_of(app)["enabled"] is False
    credit = CREDIT
    form = edit_form(admin_client, publish="1")
    response = admin_client.post("/admin/templates/small", data=form)
    assert response.status_code == 303, response.get_data(as_text=True)
    assert wait_ready(admin_client, "small")["state"] == "ready"  # a new colour: new frames
    assert toml_of(app)["enabled"] is True and toml_of(app)["credit"] == credit
    assert public_ids(admin_client) == ["small"]
    # A published template keeps its credit line.
    response = admin_client.post("/admin/templates/small", data=edit_form(admin_client, credit=""))
    assert response.status_code == 422
    assert toml_of(app)["credit"] == credit


def test_edit_writes_template_toml_and_the_catalog_follows(
    app: Flask, admin_client: FlaskClient
) -> None:
    before = toml_of(app)
    response = admin_client.post("/admin/templates/small", data=edit_form(admin_client))
    assert response.status_code == 303, response.get_data(as_text=True)
    assert wait_ready(admin_client, "small")["state"] == "ready"
    data = toml_of(app)
    assert data["name"] == "Small"
    assert data["captions"] == ["Hello", "Hop on"]
    assert data["text"]["box"] == [8, 50, 144, 36]
    assert data["text"]["fill"] == "#ffcc00"
    assert data["text"]["font"] == "NotoSans-Bold.ttf"
    assert data["trim"] == before["trim"] and data["source"] == before["source"]
    listed = admin_client.get("/api/templates").get_json()[0]
    assert listed["name"] == "Small"
    assert listed["text"]["fill"] == "#ffcc00"
    assert listed["captions"] == ["Hello", "Hop on"]
    # No staging file left behind in the template's folder.
    assert not [p for p in (templates_dir(app) / "small").iterdir() if p.name.startswith(".")]


def test_editing_keeps_the_names_in_other_languages(app: Flask, admin_client: FlaskClient) -> None:
    """A template named per language ([name] en/de): the form edits the default language's name
    and keeps the others; visitors get each language's."""
    path = templates_dir(app) / "small" / "template.toml"
    text = path.read_text(encoding="utf-8")
    assert text.startswith('name = "Small"\n')
    path.write_text(
        text.removeprefix('name = "Small"\n') + '\n[name]\nen = "Small"\nde = "Klein"\n',
        encoding="utf-8",
    )
    response = admin_client.post(
        "/admin/templates/small", data=edit_form(admin_client, name="Tiny"), follow_redirects=True
    )
    assert response.status_code == 200
    assert "Preparing the new frames of Tiny:" in response.get_data(as_text=True)
    assert wait_ready(admin_client, "small")["state"] == "ready"
    assert toml_of(app)["name"] == {"en": "Tiny", "de": "Klein"}
    listed = admin_client.get("/api/templates").get_json()[0]
    assert listed["name"] == "Tiny"
    assert listed["names_by_language"] == {"en": "Tiny", "de": "Klein"}


def test_a_box_outside_the_frame_is_refused(app: Flask, admin_client: FlaskClient) -> None:
    before = toml_of(app)
    response = admin_client.post(
        "/admin/templates/small", data=edit_form(admin_client, box_y=80, box_h=40)
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    message = (
        "The text box goes past the bottom edge of the 160 × 90 loop: "  # noqa: ISC003
        + "make it shorter or move it up."
    )
    assert message.replace("×", "&#215;") in html or message in html
    # The field is marked and described by the message next to it.
    assert re.search(r'<input[^>]*aria-invalid="true"[^>]*id="box_h"', html)
    assert 'id="box_h-error"' in html
    assert "does not fit" not in html
    assert toml_of(app) == before


def test_predefined_captions_pass_the_caption_policy(app: Flask, admin_client: FlaskClient) -> None:
    post(admin_client, "/admin/words/add", {"kind": "banned", "word": "kale"})
    before = toml_of(app)
    response = admin_client.post(
        "/admin/templates/small",
        data=edit_form(admin_client, caption_mode="presets", captions="Eat kale"),
    )
    assert response.status_code == 422
    assert "Caption 1 (“Eat kale”) would be refused" in response.get_data(as_text=True)
    assert toml_of(app) == before


def test_fonts_offered_are_caption_fonts() -> None:
    fonts = caption_fonts()
    assert "NotoSans-Bold.ttf" in fonts
    assert not [f for f in fonts if "Emoji" in f]


def wait_ready(client: FlaskClient, template_id: str) -> dict[str, str]:
    deadline = time.monotonic() + PREPARE_SECONDS
    while True:
        state: dict[str, str] = client.get(f"/admin/templates/{template_id}/state").get_json()
        if state["state"] != "preparing" or time.monotonic() > deadline:
            return state
        time.sleep(0.1)


def upload(client: FlaskClient, clip: Path, template_id: str, **headers: str) -> TestResponse:
    token = page_token(client, "/admin/templates/new")
    with clip.open("rb") as video:
        return post_files(
            client,
            "/admin/templates/new",
            {
                "template_id": template_id,
                "name": "Tiny bunny",
                "video": FileStorage(video, "../../etc/evil name.mp4"),
                "start": "1",
                "duration": "0.5",
                "width": "96",
                "fps": "6",
                "csrf_token": token,
            },
            headers=headers,
        )


def test_upload_is_a_draft_prepared_in_the_background(
    app: Flask, admin_client: FlaskClient, clip: Path
) -> None:
    response = upload(admin_client, clip, "tiny")
    assert response.status_code == 303, response.get_data(as_text=True)
    assert response.location == "/admin/templates/tiny"
    folder = templates_dir(app) / "tiny"
    # Beside the template, only its preparation's record (a dot-file, gone once it is ready).
    listed = sorted(p.name for p in folder.iterdir() if p.name != ".preparation.json")
    assert listed == ["source.mp4", "template.toml"]
    assert toml_of(app, "tiny")["enabled"] is False
    assert "tiny" not in public_ids(admin_client)
    page = admin_client.get("/admin/templates/tiny").get_data(as_text=True)
    assert "data-template-state" in page or "data-admin-preview" in page
    assert wait_ready(admin_client, "tiny") == {"state": "ready", "reason": ""}
    assert sorted(p.name for p in folder.iterdir()) == ["source.mp4", "template.toml"]
    page = admin_client.get("/admin/templates/tiny").get_data(as_text=True)
    assert "data-admin-preview" in page and "Draft" in page
    refused = admin_client.post("/api/renders", json={"template": "tiny", "caption": "Hi"})
    assert refused.status_code in (404, 422)
    assert "tiny" not in public_ids(admin_client)
    preview = admin_client.get("/admin/templates/tiny/preview.mp4")
    assert preview.status_code == 200 and preview.data[4:8] == b"ftyp"
    preview.close()


def test_upload_by_script_answers_json(app: Flask, admin_client: FlaskClient, clip: Path) -> None:
    response = upload(admin_client, clip, "scripted", Accept="application/json")
    assert response.status_code == 201
    assert response.get_json() == {"location": "/admin/templates/scripted"}
    again = upload(admin_client, clip, "scripted", Accept="application/json")
    assert again.status_code == 422
    assert again.get_json()["fields"]["template_id"] == ["A template 'scripted' already exists."]
    assert wait_ready(admin_client, "scripted")["state"] == "ready"


def test_visitors_keep_the_current_version_until_the_edit_is_prepared(
    app: Flask, admin_client: FlaskClient
) -> None:
    before = toml_of(app)
    listed = admin_client.get("/api/templates").get_json()[0]
    jobs = preparations(site(app).templates, app)  # type: ignore[arg-type]
    with jobs._one_at_a_time:  # another preparation is running: this edit waits for it
        response = admin_client.post(
            "/admin/templates/small", data=edit_form(admin_client, loop="boomerang")
        )
        assert response.status_code == 303
        assert admin_client.get("/admin/templates/small/state").get_json()["state"] == "preparing"
        page = admin_client.get("/admin/templates/small").get_data(as_text=True)
        assert "data-template-state" in page and "Preparing the new frames of Small" in page
        assert toml_of(app) == before
        assert admin_client.get("/api/templates").get_json()[0] == listed
    assert wait_ready(admin_client, "small")["state"] == "ready"
    assert toml_of(app)["output"]["loop"] == "boomerang"
    assert admin_client.get("/api/templates").get_json()[0]["preview_url"] != listed["preview_url"]


def test_reverse_speed_and_trim_are_edited_and_prepared_again(
    app: Flask, admin_client: FlaskClient
) -> None:
    catalog = site(app).templates
    old = catalog.prepared(catalog.get("small"))
    response = admin_client.post(
        "/admin/templates/small", data=edit_form(admin_client, loop="reverse")
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    # Written once the new frames are ready; visitors keep the old version meanwhile.
    assert wait_ready(admin_client, "small")["state"] == "ready"
    assert toml_of(app)["output"]["loop"] == "reverse"
    new = catalog.prepared(catalog.get("small"))
    assert new.template.version != old.template.version
    assert np.array_equal(new.frames[0], old.frames[-1])
    response = admin_client.post(
        "/admin/templates/small",
        data=edit_form(
            admin_client, loop="forward", speed="2", trim_start="0.5", trim_duration="0.5"
        ),
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    assert wait_ready(admin_client, "small")["state"] == "ready"
    data = toml_of(app)
    assert data["output"]["speed"] == 2.0
    assert data["trim"] == {"start": 0.5, "duration": 0.5}
    faster = catalog.prepared(catalog.get("small"))
    assert faster.frame_count == 4  # 0.5 s at 8 fps
    # A start past the end of the video is refused next to its field.
    response = admin_client.post(
        "/admin/templates/small", data=edit_form(admin_client, trim_start="90")
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "start the loop before its end" in html
    assert re.search(r'<input[^>]*aria-invalid="true"[^>]*id="trim_start"', html)


def test_upload_refuses_a_playlist_disguised_as_video(
    app: Flask, admin_client: FlaskClient, tmp_path: Path
) -> None:
    playlist = tmp_path / "loop.mp4"
    playlist.write_text("#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n")
    token = page_token(admin_client, "/admin/templates/new")
    with playlist.open("rb") as video:
        response = admin_client.post(
            "/admin/templates/new",
            data={
                "template_id": "sneaky",
                "video": (video, "loop.mp4"),
                "start": "0",
                "width": "96",
                "fps": "6",
                "csrf_token": token,
            },  # fmt: skip
            content_type="multipart/form-data",
        )
    assert response.status_code == 422
    assert not (templates_dir(app) / "sneaky").exists()


def test_upload_body_limit(admin_client: FlaskClient) -> None:
    token = page_token(admin_client, "/admin/templates/new")

    def declared(path: str, length: int) -> int:
        # A declared length is enough: the body is refused before a byte of it is read.
        return admin_client.post(
            path,
            data=b"--x--\r\n",
            content_type="multipart/form-data; boundary=x",
            environ_overrides={"CONTENT_LENGTH": str(length)},
        ).status_code

    assert declared("/admin/templates/new", UPLOAD_MAX_BYTES + 1) == 413
    assert declared("/admin/templates/new", UPLOAD_MAX_BYTES) != 413
    # Elsewhere the site's 16 KB cap holds, even for the admin.
    assert declared("/admin/words/add", 17 * 1024) == 413
    response = admin_client.post(
        "/admin/words/add", data={"word": "x" * 20_000, "csrf_token": token}
    )
    assert response.status_code == 413


@pytest.mark.parametrize("number", ["sNaN", "NaN", "Infinity"])
def test_upload_refuses_numbers_that_are_not_finite(
    app: Flask, admin_client: FlaskClient, number: str
) -> None:
    token = page_token(admin_client, "/admin/templates/new")
    # The numbers are refused before the video is looked at: a few bytes stand in for it.
    with io.BytesIO(b"\x00\x00\x00\x18ftypmp42") as video:
        response = admin_client.post(
            "/admin/templates/new",
            data={
                "template_id": "nan",
                "video": (video, "loop.mp4"),
                "start": number,
                "width": "96",
                "fps": "6",
                "csrf_token": token,
            },
            content_type="multipart/form-data",
        )
    assert response.status_code == 422
    assert not (templates_dir(app) / "nan").exists()


def test_upload_refusals_speak_the_admins_language(
    app: Flask, admin_client: FlaskClient, clip: Path, tmp_path: Path
) -> None:
    """The authoring code's refusals name the CLI's options; the form names its own field in the
    page's language, and the probe's refusals are translated too (codes never change)."""
    german = {"Accept": "application/json", "Accept-Language": "de"}
    assert upload(admin_client, clip, "doppelt", Accept="application/json").status_code == 201
    again = upload(admin_client, clip, "doppelt", **german)
    assert again.status_code == 422
    assert again.get_json()["fields"]["template_id"] == ["Eine Vorlage 'doppelt' gibt es schon."]

    def refused_fields(template_id: str, video: Path, start: str) -> dict[str, list[str]]:
        token = page_token(admin_client, "/admin/templates/new")
        with video.open("rb") as fh:
            fields = {"template_id": template_id, "video": FileStorage(fh, "loop.mp4"),
                      "start": start, "width": "96", "fps": "6", "csrf_token": token}  # fmt: skip
            response = post_files(admin_client, "/admin/templates/new", fields, headers=german)
        assert response.status_code == 422
        return dict(response.get_json()["fields"])

    [message] = refused_fields("spaet", clip, start="30")["start"]
    assert message.startswith("Der Anfang muss innerhalb der ")
    assert message.endswith(" s des Videos liegen.")
    playlist = tmp_path / "playlist.mp4"
    playlist.write_text("#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n")
    refused = refused_fields("liste", playlist, start="0")
    assert refused["video"] == ["Diese Datei ist eine Playlist, kein Video."]


def test_a_drafts_name_does_not_leak_through_old_gallery_entries(
    app: Flask, admin_client: FlaskClient
) -> None:
    """A render curated while its template was public stays in the gallery when the template
    goes back to draft (the admin curated the render; its media are public anyway), but GraphQL
    no longer names the template, nor links its preview: ``template`` is null."""
    from tests.site.test_graphql import curate

    [key] = curate(app, ["Curated"])
    name = str(toml_of(app)["name"])
    full = (
        "{ gallery(first: 10) { edges { node { key caption "
        "template { id name posterUrl previewUrl } } } } }"
    )
    before = admin_client.post("/graphql", json={"query": full}).get_json()
    assert before["data"]["gallery"]["edges"][0]["node"]["template"]["name"] == name
    post(admin_client, "/admin/templates/small/unpublish", token_from="/admin/templates")
    assert toml_of(app)["enabled"] is False

    response = admin_client.post("/graphql", json={"query": full})
    body = response.get_json()
    assert "errors" not in body, body
    [edge] = body["data"]["gallery"]["edges"]
    assert edge["node"]["key"] == key and edge["node"]["template"] is None
    assert name not in response.get_data(as_text=True)
    # The gallery page: its own query (gallery.js) still lists the entry, and the page never
    # names a template.
    script = admin_client.get("/static/js/gallery.js")
    page_query = "".join(
        re.findall(
            r'"([^"]*)"', script.get_data(as_text=True).split("var QUERY =")[1].split(";")[0]
        )
    )
    script.close()
    listed = admin_client.post(
        "/graphql", json={"query": page_query, "variables": {"first": 10}}
    ).get_json()
    assert [e["node"]["key"] for e in listed["data"]["gallery"]["edges"]] == [key]
    page = admin_client.get("/gallery").get_data(as_text=True)
    assert name not in page
