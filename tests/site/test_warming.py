"""A template the server's start is still preparing: listed as getting ready, its renders
answered 503 with Retry-After (cache hits still served), its preview files too; then ready."""

from __future__ import annotations

from flask import Flask

from loopmark.renderer.render import render_key
from loopmark.web import links
from tests.site.conftest import render_service, render_via_api, site_services


def test_while_a_template_gets_ready_the_site_says_so(app: Flask) -> None:
    client = app.test_client()
    done = render_via_api(client, "Made before")
    catalog = site_services(app).templates
    template = catalog.get("small")
    catalog._prepared.start_warming(template)  # type: ignore[attr-defined]
    try:
        listing = client.get("/api/templates")
        assert listing.status_code == 200
        assert listing.headers["Cache-Control"] == "no-store"
        (entry,) = listing.get_json()
        assert entry["id"] == "small" and entry["ready"] is False
        assert "preview_url" not in entry

        refused = client.post("/api/renders", json={"template": "small", "caption": "Too soon"})
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "5"
        assert refused.get_json()["error"]["code"] == "template_not_ready"
        assert render_service(app).records.get(refused_key(app, "Too soon")) is None
        # A caption rendered already is still a cache hit.
        hit = client.post("/api/renders", json={"template": "small", "caption": "Made before"})
        assert hit.status_code == 200 and hit.get_json()["key"] == done["key"]

        home = client.get("/")
        assert home.status_code == 200
        preview = client.get(done_template_preview(app))
        assert preview.status_code == 503 and preview.headers["Retry-After"] == "5"
    finally:
        catalog._prepared.stop_warming(template)  # type: ignore[attr-defined]
    (entry,) = client.get("/api/templates").get_json()
    assert entry["ready"] is True and entry["preview_url"]
    assert client.post(
        "/api/renders", json={"template": "small", "caption": "Now"}
    ).status_code in (
        200,
        202,
    )


def refused_key(app: Flask, caption: str) -> str:
    return render_key(site_services(app).templates.get("small"), caption)


def done_template_preview(app: Flask) -> str:
    with app.test_request_context():
        return links.template_urls(site_services(app).templates.get("small"))["preview"]
