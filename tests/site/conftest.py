"""Site fixtures in the Flask tutorial's style: an app per test over fresh media and records.

Every app shares the session's prepared ``small`` template (LOOPMARK_DATA_DIR/prepared), so no
test prepares it again; media and the SQLite records live in the test's tmp_path. ``make_app``
builds more apps (other settings, S3 on moto) and closes every one at the end of the test.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from loopmark.app import create_app
from loopmark.composition import Services, setup_backends
from loopmark.renderer.prepare import PreparedTemplate
from loopmark.service.render_service import RenderService
from loopmark.web.context import services
from tests.paths import DEMO_TEMPLATES

# Generous: the machine is shared. A test polling for a render fails only past this bound.
RENDER_DONE_SECONDS = 120.0
POLL_SECONDS = 0.05

MakeApp = Callable[..., Flask]


def site_config(tmp_path: Path, workdir: Path, **overrides: Any) -> dict[str, Any]:
    """create_app's config for a test: the session's templates, fresh media and records."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test-only-secret",
        "LOOPMARK_DATA_DIR": str(workdir),
        "LOOPMARK_TEMPLATES_DIR": str(workdir / "templates"),
        "LOOPMARK_STORAGE": f"file://{tmp_path / 'media'}",
        "LOOPMARK_RECORDS": f"sqlite:///{tmp_path / 'loopmark.db'}",
        "LOOPMARK_DISPATCH": "local",
        "LOOPMARK_MEDIA_BASE_URL": "",
        "LOOPMARK_RENDER_CONCURRENCY": "2",
        "LOOPMARK_JSON_LOGS": "off",
        **overrides,
    }


def site_services(app: Flask) -> Services:
    return services(app)


def render_service(app: Flask) -> RenderService:
    return site_services(app).render


def json_object(response: TestResponse) -> dict[str, Any]:
    """The response's JSON body, which is an object (Flask types every JSON body as Any)."""
    body = response.get_json()
    assert isinstance(body, dict), response.get_data(as_text=True)
    return body


def wait_done(client: FlaskClient, key: str) -> dict[str, Any]:
    """Poll GET /api/renders/<key> until it answers 200; its JSON."""
    deadline = time.monotonic() + RENDER_DONE_SECONDS
    while True:
        response = client.get(f"/api/renders/{key}")
        assert response.status_code in (200, 202), response.get_data(as_text=True)
        if response.status_code == 200:
            return json_object(response)
        assert time.monotonic() < deadline, f"render {key} not done: {response.get_json()}"
        time.sleep(POLL_SECONDS)


def render_via_api(client: FlaskClient, caption: str, template: str = "small") -> dict[str, Any]:
    """POST a render and poll until done; the done JSON."""
    response = client.post("/api/renders", json={"template": template, "caption": caption})
    assert response.status_code in (200, 202), response.get_data(as_text=True)
    body = response.get_json()
    return body if response.status_code == 200 else wait_done(client, body["key"])


@pytest.fixture
def make_app(
    tmp_path: Path, workdir: Path, small: PreparedTemplate, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MakeApp]:
    """Build an app with ``make_app(**overrides)`` (LOOPMARK_* or app.config keys); its
    backends are set up, and it is closed when the test ends."""
    for name in list(os.environ):
        if name.startswith("LOOPMARK_"):
            monkeypatch.delenv(name)
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        app = create_app(site_config(tmp_path, workdir, **overrides))
        setup_backends(site_services(app).settings)
        apps.append(app)
        return app

    yield make
    for app in apps:
        site_services(app).close()


@pytest.fixture
def app(make_app: MakeApp) -> Flask:
    """The site over the session's small template, local media and SQLite records."""
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the repository's demo templates are prepared, once per session (seconds each)."""
    return tmp_path_factory.mktemp("demo-data")


@pytest.fixture
def demo_app(make_app: MakeApp, demo_data_dir: Path) -> Flask:
    """The site over the repository's templates_video (big-stretch, head-scratch, wake-up)."""
    return make_app(
        LOOPMARK_DATA_DIR=str(demo_data_dir), LOOPMARK_TEMPLATES_DIR=str(DEMO_TEMPLATES)
    )


@pytest.fixture
def demo_client(demo_app: Flask) -> FlaskClient:
    return demo_app.test_client()


@pytest.fixture
def done(client: FlaskClient) -> dict[str, Any]:
    """One caption rendered through the API to done: its done JSON."""
    return render_via_api(client, "Media")
