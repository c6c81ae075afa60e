"""Upload limits: the cap on upload jobs keeps workers for template renders; upload rates per
visitor; retention of incoming files (``loopmark gc``)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from loopmark.composition import run_gc
from tests.site.conftest import MakeApp, site_services, wait_done
from tests.site.test_uploads import declare, error_code, render, upload


def test_upload_jobs_never_take_every_worker(make_app: MakeApp, clip: Path) -> None:
    app = make_app(LOOPMARK_UPLOAD_JOBS="1", RENDER_WAIT_SECONDS=0.0)
    client = app.test_client()
    first = render(client, upload(client, clip), start=0.1, duration=1.3, caption="First")
    assert first.status_code == 202, first.get_data(as_text=True)
    # A second upload job is refused while the first is in flight (429, Retry-After)...
    second_id = upload(client, clip)
    refused = render(client, second_id, start=0.3, duration=1.1, caption="Second")
    assert refused.status_code == 429, refused.get_data(as_text=True)
    assert error_code(refused) == "uploads_busy"
    assert int(refused.headers["Retry-After"]) >= 1
    # ...while a template render still gets a worker and finishes.
    template = client.post("/api/renders", json={"template": "small", "caption": "Not starved"})
    assert template.status_code in (200, 202)
    assert wait_done(client, template.get_json()["key"])["status"] == "done"
    # Once the first is done, the second is admitted.
    wait_done(client, first.get_json()["key"])
    again = render(client, second_id, start=0.3, duration=1.1, caption="Second")
    assert again.status_code in (200, 202), again.get_data(as_text=True)


def test_upload_rate_per_visitor(make_app: MakeApp, clip: Path) -> None:
    client = make_app(LOOPMARK_RATE_LIMIT_UPLOADS="2/minute").test_client()
    token = client.get("/api/visitor").get_json()["token"]
    headers = {"X-Loopmark-Visitor": token}
    for _ in range(2):
        declare(client, clip, **headers)
    refused = client.post(
        "/api/uploads",
        json={"filename": "a.mp4", "content_type": "video/mp4", "size": 1000},
        headers=headers,
    )
    assert refused.status_code == 429 and "Retry-After" in refused.headers


def test_gc_deletes_expired_uploads_and_keeps_fresh_ones(make_app: MakeApp, clip: Path) -> None:
    app = make_app(LOOPMARK_KEEP_UPLOADS="on")
    client = app.test_client()
    upload(client, clip)
    services = site_services(app)
    blobs = services.render.blobs
    stored = sorted(b.key for b in blobs.list("incoming/"))
    assert len(stored) == 2  # the file and its verified description
    settings = services.settings
    assert "0 expired uploads" in run_gc(settings, days=90, dry_run=False).line(90)
    assert sorted(b.key for b in blobs.list("incoming/")) == stored
    # Written two hours ago, the upload has expired: gc deletes it.
    two_hours_ago = time.time() - 2 * 3600
    for key in stored:
        path = blobs.local_path(key)
        assert path is not None
        os.utime(path, (two_hours_ago, two_hours_ago))
    assert "2 expired uploads" in run_gc(settings, days=90, dry_run=True).line(90)
    assert len(list(blobs.list("incoming/"))) == 2
    assert "2 expired uploads" in run_gc(settings, days=90, dry_run=False).line(90)
    assert not list(blobs.list("incoming/"))
