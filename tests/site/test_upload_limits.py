"""Upload limits: the cap on upload jobs keeps workers for template renders; upload rates per
visitor; retention of incoming files (``loopmark gc``)."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from loopmark.composition import run_gc
from loopmark.config import Settings
from loopmark.errors import ConfigInvalid
from loopmark.service.uploads import INCOMING_RELIST_SECONDS, MAX_PENDING_UPLOADS_PER_VISITOR
from tests.site.conftest import MakeApp, site_services, wait_done
from tests.site.test_uploads import declare, error_code, render, send, upload


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


def announce(client: FlaskClient, size: int) -> Any:
    return client.post(
        "/api/uploads", json={"filename": "a.mp4", "content_type": "video/mp4", "size": size}
    )


def test_total_incoming_bytes_cap_answers_503_until_uploads_are_processed(
    make_app: MakeApp, clip: Path
) -> None:
    size = clip.stat().st_size  # about 1.06 MB
    app = make_app(
        LOOPMARK_UPLOAD_MAX_BYTES=str(2 * size),
        LOOPMARK_UPLOAD_INCOMING_MAX_BYTES=str(3 * size),
        LOOPMARK_RATE_LIMITS="off",
    )
    client = app.test_client()
    uploads = site_services(app).uploads
    first = upload(client, clip)  # stored: 1 × size unprocessed
    assert announce(client, 2 * size - 10).status_code == 201  # on its way: 3 × size - 10
    full = announce(client, 20)
    assert full.status_code == 503, full.get_data(as_text=True)
    assert error_code(full) == "uploads_full"
    assert int(full.headers["Retry-After"]) >= 1
    assert "try again" in full.get_json()["error"]["message"]
    assert uploads.incoming_bytes() == 3 * size - 10  # the refused one is not counted
    # /api/convert counts too (its body, before it is read).
    convert = client.post(
        "/api/convert",
        data={"start": "1", "duration": "1", "file": (io.BytesIO(b"x" * 99), "a.mp4")},
    )
    assert convert.status_code == 503 and error_code(convert) == "uploads_full"
    # The first upload processed (rendered, its file deleted): room again, seen within a second.
    wait_done_json = render(client, first, caption="Processed")
    assert wait_done_json.status_code in (200, 202)
    if wait_done_json.status_code == 202:
        wait_done(client, wait_done_json.get_json()["key"])
    time.sleep(INCOMING_RELIST_SECONDS + 0.1)
    assert announce(client, 20).status_code == 201
    assert uploads.incoming_bytes() == 2 * size - 10 + 20


def test_an_incoming_cap_below_one_upload_is_refused_at_start() -> None:
    with pytest.raises(ConfigInvalid, match="LOOPMARK_UPLOAD_INCOMING_MAX_BYTES"):
        Settings.from_env({"LOOPMARK_UPLOAD_INCOMING_MAX_BYTES": "1000"})
    assert Settings.from_env({}).upload_incoming_max_bytes == 1024**3


def test_abandoned_uploads_and_refused_forms_do_not_fill_the_cap(
    make_app: MakeApp, clip: Path
) -> None:
    size = clip.stat().st_size
    app = make_app(
        LOOPMARK_UPLOAD_MAX_BYTES=str(2 * size),
        LOOPMARK_UPLOAD_INCOMING_MAX_BYTES=str(2 * size + size // 2),
        LOOPMARK_RATE_LIMITS="off",
        LOOPMARK_KEEP_UPLOADS="on",
    )
    client = app.test_client()
    services = site_services(app)
    upload(client, clip)
    # Stored two hours ago and never rendered: abandoned (gc's to delete), not waiting.
    two_hours_ago = time.time() - 2 * 3600
    for blob in services.render.blobs.list("incoming/"):
        path = services.render.blobs.local_path(blob.key)
        assert path is not None
        os.utime(path, (two_hours_ago, two_hours_ago))
    time.sleep(INCOMING_RELIST_SECONDS + 0.1)
    assert announce(client, 2 * size).status_code == 201  # would not fit beside the old one
    assert services.uploads.incoming_bytes() == 2 * size
    # A /api/convert refused for a bad field holds nothing back.
    bad = client.post(
        "/api/convert",
        data={"start": "soon", "duration": "1", "file": (io.BytesIO(b"x" * 99), "a.mp4")},
    )
    assert bad.status_code == 422, bad.get_data(as_text=True)
    assert services.uploads.incoming_bytes() == 2 * size


def test_a_visitor_cannot_hold_the_incoming_cap_with_announcements(
    make_app: MakeApp, clip: Path
) -> None:
    """Announcing costs nothing: a visitor has at most MAX_PENDING_UPLOADS_PER_VISITOR uploads
    announced and not sent; one sent makes room; another visitor is not held back."""
    client = make_app(LOOPMARK_RATE_LIMIT_UPLOADS="100/minute").test_client()

    def visitor() -> dict[str, str]:
        return {"X-Loopmark-Visitor": client.get("/api/visitor").get_json()["token"]}

    mine = visitor()
    tickets = [declare(client, clip, **mine) for _ in range(MAX_PENDING_UPLOADS_PER_VISITOR)]
    refused = client.post(
        "/api/uploads",
        json={"filename": "a.mp4", "content_type": "video/mp4", "size": 1000},
        headers=mine,
    )
    assert refused.status_code == 429, refused.get_data(as_text=True)
    assert error_code(refused) == "uploads_pending"
    assert int(refused.headers["Retry-After"]) >= 1
    declare(client, clip, **visitor())  # someone else is not held back
    sent = send(client, tickets[0], clip.read_bytes())
    assert sent.status_code == 201, sent.get_data(as_text=True)
    declare(client, clip, **mine)  # one sent: room for one more
