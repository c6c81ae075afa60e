"""The origin guard: with LOOPMARK_ORIGIN_VERIFY set, only requests carrying the CDN's secret
header are served (the CDK stack sets it on CloudFront's origin to the site's function URL)."""

from __future__ import annotations

from loopmark.web.origin import HEADER
from tests.site.conftest import MakeApp

SECRET = "v" * 40


def test_without_the_cdn_header_nothing_is_served(make_app: MakeApp) -> None:
    client = make_app(LOOPMARK_ORIGIN_VERIFY=SECRET).test_client()
    for path in ("/", "/healthz", "/api/templates", "/static/css/site.css", "/admin/login"):
        refused = client.get(path)
        assert refused.status_code == 403, path
        assert client.get(path, headers={HEADER: "v" * 39 + "w"}).status_code == 403, path
    answered = client.get("/healthz", headers={HEADER: SECRET})
    assert answered.status_code == 200


def test_the_guard_is_off_unless_configured(make_app: MakeApp) -> None:
    assert make_app().test_client().get("/healthz").status_code == 200
