"""The Lambda entry points: the site behind a function URL answers through apig-wsgi."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopmark import lambda_entry
from loopmark.composition import setup_backends
from loopmark.config import Settings
from loopmark.renderer.prepare import PreparedTemplate
from loopmark.renderer.render import render_key
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


def test_the_scheduled_requeue_dispatches_renders_left_unfinished(
    site_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A render recorded as queued whose every event was lost (no worker ever claimed it) is
    rendered once the schedule's event comes; a younger one is left to Lambda's own queue."""
    render = services(lambda_entry.site_app()).render
    caption = "Lost on the way"
    key = render_key(render.catalog.get("small"), caption)
    assert render.records.enqueue(key, template_id="small", caption=caption, words_version=None)

    assert lambda_entry.site({"loopmark": "requeue"}) == {
        "ok": True,
        "task": "requeue",
        "requeued": 0,  # queued just now: it may still be in Lambda's queue
    }
    monkeypatch.setattr(lambda_entry, "REQUEUE_MIN_AGE_S", 0.0)
    assert lambda_entry.site({"loopmark": "requeue"})["requeued"] == 1
    deadline = time.monotonic() + 60
    while (record := render.record(key)) is not None and record.status != "done":
        assert time.monotonic() < deadline, record
        time.sleep(0.05)
    assert record is not None and record.status == "done"


def test_an_unknown_scheduled_task_is_refused(site_env: None) -> None:
    answer = lambda_entry.site({"loopmark": "sweep-everything"})
    assert answer["ok"] is False
    assert answer["error"]["code"] == "unknown_task"
