"""/healthz and /metrics, and the production server (cheroot) answering over real HTTP."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from loopmark.app import create_app
from loopmark.site.health import HEALTH_BUDGET_SECONDS
from loopmark.web.server import create_server, warm_up
from tests.site.conftest import (
    MakeApp,
    render_service,
    render_via_api,
    site_config,
    site_services,
)


def media_root(app: Flask) -> Path:
    return Path(render_service(app).blobs.root)  # type: ignore[attr-defined]


def test_healthz_is_ok_when_every_backend_answers(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["ok"] is True
    assert body["checks"] == {"storage": "ok", "records": "ok", "dispatcher": "ok", "disk": "ok"}
    assert body["failing"] == []
    assert body["disk_free_mb"] > 0
    assert response.headers["Cache-Control"] == "no-store"


def test_healthz_names_a_storage_outage(app: Flask, client: FlaskClient) -> None:
    shutil.rmtree(media_root(app))
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["ok"] is False
    assert body["checks"]["storage"] == "storage_unavailable"
    assert body["checks"]["records"] == "ok"
    assert body["failing"] == ["storage"]
    assert response.headers["Retry-After"] == "5"
    # Reasons (paths) are logged, not shown.
    assert str(media_root(app)) not in response.get_data(as_text=True)


def test_healthz_names_a_records_outage(app: Flask, client: FlaskClient, tmp_path: Path) -> None:
    render_service(app).records.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp_path / 'loopmark.db'}{suffix}").unlink(missing_ok=True)
    body = client.get("/healthz").get_json()
    assert body["failing"] == ["records"]
    assert body["checks"]["records"] == "records_unavailable"


def test_healthz_names_a_stopped_render_pool(app: Flask, client: FlaskClient) -> None:
    render_service(app).dispatcher.close()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["dispatcher"] == "dispatch_unavailable"


def test_metrics_expose_renders_and_requests(client: FlaskClient) -> None:
    render_via_api(client, "Counted")
    client.post("/api/renders", json={"template": "small", "caption": "Counted"})
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    text = response.get_data(as_text=True)
    assert 'loopmark_renders_total{result="done"} 1.0' in text
    assert "loopmark_cache_hits_total 1.0" in text
    assert "loopmark_queue_depth 0.0" in text
    assert (
        'loopmark_http_requests_total{endpoint="api.create_render",method="POST",status="200"}'
        in text
    )
    assert "loopmark_http_request_seconds_bucket" in text


def test_warm_up_prepares_every_enabled_template(app: Flask) -> None:
    assert warm_up(app) == ["small"]


@pytest.mark.timeout(120)
def test_the_server_serves_the_site_over_http(app: Flask) -> None:
    server = create_server(app, "127.0.0.1", 0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.effective_port}"
        with urllib.request.urlopen(f"{base}/healthz", timeout=30) as response:
            assert response.status == 200
            assert json.load(response)["ok"] is True
            assert response.headers["Server"] == "loopmark"
            assert response.headers["X-Request-Id"]
        request = urllib.request.Request(
            f"{base}/api/renders",
            data=json.dumps({"template": "small", "caption": "Over HTTP"}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status in (200, 202)
            assert json.load(response)["key"]
    finally:
        server.close()
        thread.join(10)
    assert not thread.is_alive()


@pytest.fixture
def stalled_endpoint() -> Iterator[str]:
    """A TCP server on loopback that accepts connections and never answers (a frozen backend)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    listener.close()


@pytest.mark.timeout(120)
def test_healthz_answers_within_its_budget_when_a_backend_stalls(
    tmp_path: Path, workdir: Path, stalled_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", stalled_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # Backends open lazily: nothing waits on the stalled S3 until a probe asks it.
    app = create_app(site_config(tmp_path, workdir, LOOPMARK_STORAGE="s3://stalled-bucket/m"))
    client = app.test_client()
    try:
        for _ in range(2):  # the second call finds the first probe still stuck
            started = time.monotonic()
            response = client.get("/healthz")
            elapsed_s = time.monotonic() - started
            assert response.status_code == 503
            body = response.get_json()
            # Either the budget ran out first, or S3's own short read timeout (1 s, two tries)
            # gave up first: both report the stalled storage, neither waits for the stall.
            assert body["checks"]["storage"] in ("timeout", "storage_unavailable")
            assert body["checks"]["dispatcher"] == "ok"  # the others still report
            assert "storage" in body["failing"]
            # The budget is 2 s; generous for a busy machine, far below the backend's stall.
            assert elapsed_s < HEALTH_BUDGET_SECONDS + 5
        assert client.get("/readyz").status_code == 503
    finally:
        site_services(app).close()


def test_healthz_reports_low_disk_space(make_app: MakeApp) -> None:
    client = make_app(LOOPMARK_MIN_FREE_DISK_MB=str(10**12)).test_client()
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["disk"] == "disk_low"
    assert body["failing"] == ["disk"]
    assert response.headers["Retry-After"] == "5"


def test_readyz_waits_for_warm_templates_then_answers(app: Flask, client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"ready": False, "failing": ["templates"]}
    warm_up(app)
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"ready": True, "failing": []}
    assert response.headers["Cache-Control"] == "no-store"
