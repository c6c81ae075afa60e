"""Uploads with S3 storage (moto's server): the client posts straight to the bucket with the
presigned POST, and the site verifies the stored file (download, hardened probe, hash) when the
render is asked for. Moto (5.2) stores a presigned POST without checking its policy, so the
policy's conditions are read back from the signed document here; S3 enforces them."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import urllib3

from tests.renderer import hostile_videos as hv
from tests.site.conftest import MakeApp, site_services
from tests.site.test_uploads import done_json, error_code, render

STORAGE = "s3://loopmark-site/media"


def post_to_s3(ticket: dict[str, Any], data: bytes) -> int:
    fields = [*ticket["upload"]["fields"].items(), ("file", ("clip.mp4", data, "video/mp4"))]
    response = urllib3.request("POST", ticket["upload"]["url"], fields=fields, timeout=30)
    return int(response.status)


def declare(client: Any, size: int) -> dict[str, Any]:
    response = client.post(
        "/api/uploads", json={"filename": "clip.mp4", "content_type": "video/mp4", "size": size}
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return dict(response.get_json())


def test_presigned_post_then_render(aws: str, make_app: MakeApp, clip: Path) -> None:
    app = make_app(LOOPMARK_STORAGE=STORAGE)
    client = app.test_client()
    data = clip.read_bytes()
    ticket = declare(client, len(data))
    assert ticket["upload"]["url"].startswith(aws)
    fields = ticket["upload"]["fields"]
    policy = json.loads(base64.b64decode(fields["policy"]))
    conditions = policy["conditions"]
    assert ["content-length-range", 1, len(data)] in conditions
    assert {"Content-Type": "video/mp4"} in conditions
    assert {"key": fields["key"]} in conditions
    assert fields["key"].startswith("media/incoming/") and fields["key"].endswith("/source")
    expires = time.mktime(time.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ"))
    assert 0 < expires - time.mktime(time.gmtime()) <= 600 + 5
    assert post_to_s3(ticket, data) == 204
    body = done_json(client, render(client, ticket["id"], caption="Straight to S3"))
    assert body["status"] == "done" and body["template"].startswith("u-")
    blobs = site_services(app).render.blobs
    # Verified, prepared, and the upload deleted; only its description stays until gc.
    assert [b.key.rsplit("/", 1)[1] for b in blobs.list("incoming/") if "clips" not in b.key] == [
        "upload.json"
    ]


def test_a_hostile_file_posted_to_s3_is_refused_and_deleted(
    aws: str, make_app: MakeApp, tmp_path: Path
) -> None:
    app = make_app(LOOPMARK_STORAGE=STORAGE)
    client = app.test_client()
    data = hv.hls_playlist(tmp_path).read_bytes()
    ticket = declare(client, len(data))
    assert post_to_s3(ticket, data) == 204
    response = render(client, ticket["id"])
    assert response.status_code == 422 and error_code(response) == "video_unsupported"
    assert not list(site_services(app).render.blobs.list("incoming/"))
    # Asked again: nothing is there any more.
    assert render(client, ticket["id"]).status_code == 404


def csp_directives(response: Any) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return dict(directive.split(" ", 1) for directive in policy.split("; "))


def test_the_csp_lets_the_browser_post_to_the_bucket_and_nowhere_else(
    aws: str, make_app: MakeApp
) -> None:
    client = make_app(LOOPMARK_STORAGE=STORAGE).test_client()
    ticket = declare(client, 1000)
    parts = urlsplit(ticket["upload"]["url"])
    bucket_origin = f"{parts.scheme}://{parts.netloc}"
    assert bucket_origin == aws  # path-style on moto: the endpoint's origin
    # Every answer (the home page that runs clip.js, and the API) carries it.
    for path in ("/", "/api/templates"):
        assert csp_directives(client.get(path))["connect-src"] == f"'self' {bucket_origin}"


def test_the_csp_has_no_upload_origin_without_uploads_or_without_s3(
    aws: str, make_app: MakeApp
) -> None:
    off = make_app(LOOPMARK_STORAGE=STORAGE, LOOPMARK_UPLOADS="off").test_client()
    assert csp_directives(off.get("/"))["connect-src"] == "'self'"
    local = make_app().test_client()
    assert (
        local.post(
            "/api/uploads", json={"filename": "a.mp4", "content_type": "video/mp4", "size": 10}
        )
        .get_json()["upload"]["url"]
        .startswith("/api/uploads/")
    )
    assert csp_directives(local.get("/"))["connect-src"] == "'self'"
