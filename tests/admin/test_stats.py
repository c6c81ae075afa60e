"""The admin's statistics page: renders per day, the cache hit rate, the most used captions."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.site.conftest import render_via_api


def test_stats_page_counts_renders(admin_client: FlaskClient) -> None:
    render_via_api(admin_client, "Counted once")
    render_via_api(admin_client, "Counted once")  # a cache hit
    page = admin_client.get("/admin/stats").get_data(as_text=True)
    assert "counted once" in page
    assert "50 %" in page


def test_stats_page_without_renders(admin_client: FlaskClient) -> None:
    page = admin_client.get("/admin/stats").get_data(as_text=True)
    assert "No renders in the last 14 days." in page
    assert "No captions yet." in page
