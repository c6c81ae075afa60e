"""The brand's word lists in the admin: each change applies to the very next caption."""

from __future__ import annotations

import io

import pytest
from flask import Flask
from flask.testing import FlaskClient

from loopmark.admin.views.words import read_word_file
from loopmark.errors import BadInput
from tests.admin.conftest import admin, post


def caption_ok(client: FlaskClient, caption: str) -> bool:
    response = client.post("/api/captions/check", json={"template": "small", "caption": caption})
    assert response.status_code in (200, 422), response.get_data(as_text=True)
    return response.status_code == 200


def test_a_forbidden_word_applies_to_the_next_caption(admin_client: FlaskClient) -> None:
    assert caption_ok(admin_client, "Free pizza for everyone")
    response = post(admin_client, "/admin/words/add", {"kind": "banned", "word": "Pizza"})
    assert response.status_code == 303
    assert not caption_ok(admin_client, "Free pizza for everyone")
    assert not caption_ok(admin_client, "Free P I Z Z A for everyone")
    page = admin_client.get("/admin/words").get_data(as_text=True)
    assert "<span>pizza</span>" in page
    post(admin_client, "/admin/words/remove", {"kind": "banned", "word": "pizza"})
    assert caption_ok(admin_client, "Free pizza for everyone")


def test_an_allowed_exception_lets_a_false_positive_through(admin_client: FlaskClient) -> None:
    post(admin_client, "/admin/words/add", {"kind": "banned", "word": "hop"})
    assert not caption_ok(admin_client, "hop hop")
    post(admin_client, "/admin/words/add", {"kind": "allowed", "word": "hop"})
    assert caption_ok(admin_client, "hop hop")


def test_import_adds_or_replaces(app: Flask, admin_client: FlaskClient) -> None:
    post(admin_client, "/admin/words/add", {"kind": "banned", "word": "kale"})
    upload = io.BytesIO("\ufeffbroccoli\n# a comment\n\nSpinach\n".encode())
    response = post(
        admin_client,
        "/admin/words/import",
        {"kind": "banned", "file": (upload, "words.txt")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    words = admin(app).words
    assert words.lists().banned == {"kale", "broccoli", "spinach"}
    assert not caption_ok(admin_client, "I love broccoli")
    replace = io.BytesIO(b"turnip\n")
    post(
        admin_client,
        "/admin/words/import",
        {"kind": "banned", "file": (replace, "w.txt"), "replace": "y"},
        content_type="multipart/form-data",
    )
    assert words.lists().banned == {"turnip"}
    assert caption_ok(admin_client, "I love broccoli")


def test_a_bad_import_changes_nothing(app: Flask, admin_client: FlaskClient) -> None:
    post(admin_client, "/admin/words/add", {"kind": "banned", "word": "kale"})
    response = post(
        admin_client,
        "/admin/words/import",
        {"kind": "banned", "file": (io.BytesIO(b"\xff\xfe\x00bad"), "w.txt"), "replace": "y"},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "must be UTF-8 text" in response.get_data(as_text=True)
    assert admin(app).words.lists().banned == {"kale"}


def test_a_word_with_invisible_characters_is_refused(admin_client: FlaskClient) -> None:
    response = post(
        admin_client,
        "/admin/words/add",
        {"kind": "banned", "word": "bad\u200bword"},
        follow_redirects=True,
    )
    assert "control or invisible characters" in response.get_data(as_text=True)


def test_read_word_file() -> None:
    assert read_word_file(b"a\r\nb\n#c\n  d  \n") == ["a", "b", "d"]
    with pytest.raises(BadInput):
        read_word_file(b"\n\n# only comments\n")
