"""Fingerprinted assets: hashed once per process outside debug, stat-ed on every call in debug."""

from __future__ import annotations

import gzip
from pathlib import Path

import brotli
import pytest
from flask import Flask, Response, current_app, request
from flask_compress import Compress

from loopmark.package_data import STATIC_DIR
from loopmark.storage.base import IMMUTABLE_CACHE_CONTROL
from loopmark.web import assets
from tests.site.conftest import MakeApp


def fingerprints() -> assets._Fingerprints:
    found: assets._Fingerprints = current_app.extensions[assets.ASSETS_EXTENSION]
    return found


def test_assets_are_hashed_once_per_process_outside_debug(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    static = tmp_path / "static"
    (static / "css").mkdir(parents=True)
    sheet = static / "css" / "x.css"
    sheet.write_text("a{}")
    monkeypatch.setattr(assets, "STATIC_DIR", static)
    with app.test_request_context():
        assert not fingerprints().restat
        first = assets.asset_url("css/x.css")
        assert first.startswith("/static/css/x.css?v=")
        sheet.write_text("b{color:red}")  # package data: a new version comes with a restart
        assert assets.asset_url("css/x.css") == first
        assert assets.fingerprint("css/x.css") == first.rpartition("v=")[2]
        # Names of files that do not exist are not kept (a crawler cannot grow the cache).
        assert assets.fingerprint("css/none.css") is None
        assert assets.asset_url("css/none.css") == "/static/css/none.css"
        assert "css/none.css" not in fingerprints().versions


def test_in_debug_an_edited_file_gets_a_new_fingerprint(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    static = tmp_path / "static"
    static.mkdir()
    sheet = static / "x.css"
    sheet.write_text("a{}")
    monkeypatch.setattr(assets, "STATIC_DIR", static)
    with app.test_request_context():
        fingerprints().restat = True  # what LOOPMARK_DEBUG (make run) sets
        first = assets.asset_url("x.css")
        sheet.write_text("b{color:red}")
        assert assets.asset_url("x.css") != first


def test_a_debug_app_restats(make_app: MakeApp) -> None:
    app = make_app(LOOPMARK_DEBUG="1")
    with app.test_request_context():
        assert fingerprints().restat


def test_stylesheets_and_scripts_are_sent_compressed(app: Flask) -> None:
    client = app.test_client()
    with app.test_request_context():
        url = assets.asset_url("css/site.css")
    original = (STATIC_DIR / "css" / "site.css").read_bytes()
    for encoding, decode in (("br", brotli.decompress), ("gzip", gzip.decompress)):
        response = client.get(url, headers={"Accept-Encoding": f"{encoding}, identity"})
        assert response.status_code == 200
        assert response.headers["Content-Encoding"] == encoding
        assert "Accept-Encoding" in response.headers["Vary"]
        assert response.headers["Cache-Control"] == IMMUTABLE_CACHE_CONTROL
        body = response.get_data()
        assert len(body) < len(original) / 2
        assert decode(body) == original
        # Revalidation by the encoded body's own ETag answers 304 with no body.
        again = client.get(
            url,
            headers={"Accept-Encoding": encoding, "If-None-Match": response.headers["ETag"]},
        )
        assert again.status_code == 304
        assert again.get_data() == b""
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert plain.get_data() == original
    plain.close()
    # Fonts are compressed already: sent as they are.
    font = client.get(
        "/static/css/fonts/CherryBombOne-Regular.woff2", headers={"Accept-Encoding": "br"}
    )
    assert font.status_code == 200 and "Content-Encoding" not in font.headers
    font.close()


def test_compression_decides_at_once_as_flask_compress_would(app: Flask) -> None:
    # Compression answers small and encoded bodies before flask-compress's checks; every answer
    # must come out exactly as flask-compress alone would leave it.
    (compression,) = [
        owner
        for hook in app.after_request_funcs[None]
        if isinstance(owner := getattr(hook, "__self__", None), Compress)
    ]
    assert isinstance(compression, assets.Compression)
    big = "x" * (assets.COMPRESS_MIN_BYTES * 4)

    def made() -> list[Response]:
        encoded = Response(b"\x1f\x8b...", mimetype="text/html")
        encoded.headers["Content-Encoding"] = "gzip"
        encoded.headers["Vary"] = "Cookie"
        varied = Response('{"a": 1}', mimetype="application/json")
        varied.headers["Vary"] = "Accept-Encoding, Cookie"
        return [
            Response('{"a": 1}', mimetype="application/json"),
            encoded,
            varied,
            Response(big, mimetype="application/json"),
            Response(big, mimetype="image/gif"),
        ]

    with app.test_request_context(headers={"Accept-Encoding": "gzip, br"}):
        ours = [compression.after_request(r) for r in made()]
        theirs = [Compress.after_request(compression, r) for r in made()]
    for mine, plain in zip(ours, theirs, strict=True):
        assert sorted(mine.headers.items()) == sorted(plain.headers.items())
        assert mine.get_data() == plain.get_data()
    assert ours[0].headers["Vary"] == "Accept-Encoding"
    assert ours[1].headers["Vary"] == "Cookie, Accept-Encoding"
    assert ours[3].headers["Content-Encoding"] == "br"  # the big one is compressed still


@pytest.mark.parametrize(
    "header",
    [
        "gzip, deflate, br",
        "gzip",
        "br;q=0, gzip;q=0.5",
        "identity",
        "",
        "*",
        "br;q=0, *;q=0.1",
        "gzip;q=0, br;q=0",
        "x" * 300 + ", gzip",  # longer than any browser's: answered, not kept
    ],
)
def test_the_preferred_encoding_is_werkzeugs_choice(app: Flask, header: str) -> None:
    assets._preferred_encoding.cache_clear()
    with app.test_request_context(headers={"Accept-Encoding": header} if header else {}):
        accepted = request.accept_encodings
        expected = next((e for e in assets.ENCODINGS if accepted.quality(e) > 0), None)
        assert assets.preferred_encoding() == expected
        assert assets.preferred_encoding() == expected
    kept = assets._preferred_encoding.cache_info()
    if len(header) <= assets.ACCEPT_ENCODING_KEPT_CHARS:
        assert (kept.currsize, kept.hits) == (1, 1)  # parsed once, then found
    else:
        assert kept.currsize == 0
