"""The template editor with captions per language (template.toml's ``[captions]`` table): it
edits the default language's and keeps the others."""

from __future__ import annotations

import time

import tomli_w
from flask import Flask
from flask.testing import FlaskClient

from tests.admin.test_templates import edit_form, templates_dir, toml_of

WRITE_SECONDS = 120  # a shared machine


def test_editing_keeps_the_other_languages_captions(app: Flask, admin_client: FlaskClient) -> None:
    path = templates_dir(app) / "small" / "template.toml"
    data = toml_of(app)
    data["captions"] = {"en": ["Hello"], "de": ["Hallo", "Hopp"]}
    path.write_text(tomli_w.dumps(data))
    page = admin_client.get("/admin/templates/small", headers={"Accept-Language": "de"})
    html = page.get_data(as_text=True)
    # The form shows the default language's captions; the page itself is German.
    textarea = html[html.index("<textarea") : html.index("</textarea>")]
    assert textarea.endswith("Hello"), textarea
    assert "Hallo" not in html
    assert "Vorgegebene Texte, einer pro Zeile" in html
    response = admin_client.post(
        "/admin/templates/small", data=edit_form(admin_client, captions="Hello\nHop on")
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    # Written once new frames are prepared (the form's colours differ): in the background.
    deadline = time.monotonic() + WRITE_SECONDS
    while toml_of(app)["captions"] == data["captions"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert toml_of(app)["captions"] == {"en": ["Hello", "Hop on"], "de": ["Hallo", "Hopp"]}
    listed = admin_client.get("/api/templates").get_json()[0]
    assert listed["captions"] == ["Hello", "Hop on"]
    assert listed["captions_by_language"] == {"en": ["Hello", "Hop on"], "de": ["Hallo", "Hopp"]}
