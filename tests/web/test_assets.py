"""Fingerprinted assets: hashed once per process outside debug, stat-ed on every call in debug."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask, current_app

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
