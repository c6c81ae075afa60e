"""The Lambda entry points: the site behind a function URL answers through apig-wsgi."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopmark import lambda_entry
from loopmark.composition import setup_backends
from loopmark.config import Settings
from loopmark.renderer.prepare import PreparedTemplate
from loopmark.web.context import services


def function_url_event(method: str, path: str, body: bytes = b"", **headers: str) -> dict[str, Any]:
    """An HTTP request as a Lambda function URL delivers it (payload format 2.0)."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "abc.lambda-url.us-east-1.on.aws", **headers},
        "requestContext": {
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4"},
            "domainName": "abc.lambda-url.us-east-1.on.aws",
            "stage": "$default",
        },
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


@pytest.fixture
def site_env(
    tmp_path: Path, workdir: Path, small: PreparedTemplate, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    env = {
        "LOOPMARK_DATA_DIR": str(workdir),
        "LOOPMARK_TEMPLATES_DIR": str(workdir / "templates"),
        "LOOPMARK_STORAGE": f"file://{tmp_path / 'media'}",
        "LOOPMARK_RECORDS": f"sqlite:///{tmp_path / 'loopmark.db'}",
        "LOOPMARK_SITE_URL": "https://gifs.example",
        "LOOPMARK_SECRET_KEY": "s" * 40,
        "LOOPMARK_JSON_LOGS": "off",
        "LOOPMARK_RENDER_CONCURRENCY": "1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    setup_backends(Settings.from_env())
    lambda_entry.site_app.cache_clear()
    lambda_entry._site_handler.cache_clear()
    yield
    services(lambda_entry.site_app()).close()
    lambda_entry.site_app.cache_clear()
    lambda_entry._site_handler.cache_clear()


def test_the_site_answers_a_function_url_event(site_env: None) -> None:
    answer = lambda_entry.site(function_url_event("GET", "/healthz"), None)
    assert answer["statusCode"] == 200
    body = answer["body"]
    if answer.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    assert json.loads(body)["ok"] is True


def test_a_render_request_through_the_function_url(site_env: None) -> None:
    request = json.dumps({"template": "small", "caption": "Hello from a URL"}).encode()
    answer = lambda_entry.site(
        function_url_event("POST", "/api/renders", request, **{"content-type": "application/json"}),
        None,
    )
    assert answer["statusCode"] in (200, 202), answer
    body = answer["body"]
    if answer.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    assert len(json.loads(body)["key"]) == 24
