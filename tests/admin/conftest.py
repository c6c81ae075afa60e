"""Admin fixtures: a site per test over a copy of the session's ``small`` template (the admin
edits template folders, so never the shared one), fresh media and records, one admin user, and
a client that logs in through the real form with its CSRF token."""

from __future__ import annotations

import functools
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse, encode_multipart

from loopmark.app import create_app
from loopmark.composition import Services, setup_backends
from loopmark.renderer.prepare import PreparedTemplate
from loopmark.service.passwords import hash_password
from loopmark.web.context import services
from tests.site.conftest import site_config

ADMIN_NAME = "ana"
ADMIN_PASSWORD = "correct horse battery"
_CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')

MakeAdminApp = Callable[..., Flask]


@functools.cache
def admin_hash() -> str:
    """One argon2 hash per session: hashing costs 64 MiB and tens of milliseconds."""
    return hash_password(ADMIN_PASSWORD)


def csrf_from(response: TestResponse) -> str:
    match = _CSRF_RE.search(response.get_data(as_text=True))
    assert match is not None, "no CSRF token in the page"
    return match.group(1)


def page_token(client: FlaskClient, path: str = "/admin/") -> str:
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return csrf_from(response)


def login(client: FlaskClient, name: str = ADMIN_NAME, password: str = ADMIN_PASSWORD,
          next_path: str | None = None) -> TestResponse:  # fmt: skip
    token = csrf_from(client.get("/admin/login"))
    url = "/admin/login" + (f"?next={next_path}" if next_path else "")
    return client.post(url, data={"name": name, "password": password, "csrf_token": token})


def post(client: FlaskClient, path: str, data: dict[str, Any] | None = None,
         token_from: str = "/admin/", **kwargs: Any) -> TestResponse:  # fmt: skip
    """A form POST carrying the CSRF token of a page the admin has open."""
    return client.post(path, data={**(data or {}), "csrf_token": page_token(client, token_from)},
                       **kwargs)  # fmt: skip


def post_files(client: FlaskClient, path: str, fields: dict[str, Any],
               headers: dict[str, str] | None = None) -> TestResponse:  # fmt: skip
    """A multipart POST encoded in memory (the test client would spool a big body to a temporary
    file that it never closes: a ResourceWarning)."""
    boundary, body = encode_multipart(MultiDict(fields))
    return client.post(path, data=body, content_type=f"multipart/form-data; boundary={boundary}",
                       headers=headers or {})  # fmt: skip


def site(app: Flask) -> Services:
    return services(app)


def admin(app: Flask) -> Services:
    return services(app)


@pytest.fixture
def make_admin_app(
    tmp_path: Path, workdir: Path, small: PreparedTemplate, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MakeAdminApp]:
    for name in list(os.environ):
        if name.startswith("LOOPMARK_"):
            monkeypatch.delenv(name)
    templates = tmp_path / "templates"
    shutil.copytree(small.template.folder, templates / "small")
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        config = site_config(tmp_path, workdir, LOOPMARK_TEMPLATES_DIR=str(templates))
        app = create_app({**config, **overrides})
        setup_backends(site(app).settings)
        admin(app).users.records.put(ADMIN_NAME, admin_hash())
        apps.append(app)
        return app

    yield make
    for app in apps:
        site(app).close()


@pytest.fixture
def app(make_admin_app: MakeAdminApp) -> Flask:
    return make_admin_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def admin_client(app: Flask) -> FlaskClient:
    """A client signed in as ADMIN_NAME."""
    client = app.test_client()
    response = login(client)
    assert response.status_code == 303, response.get_data(as_text=True)
    return client
