"""Visitors' reports in the admin's renders view: listed with their reasons, taken down (the
render's usual take-down) or dismissed, each behind the session and its CSRF token."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from loopmark.records.renders import RenderStatus
from tests.admin.conftest import csrf_from, site
from tests.site.conftest import render_via_api


def report(client: FlaskClient, key: str, reason: str = "") -> None:
    assert client.post(f"/s/{key}/report", data={"reason": reason}).status_code == 200


def test_reports_are_listed_in_the_renders_view(app: Flask, admin_client: FlaskClient) -> None:
    key = render_via_api(admin_client, "Reported caption")["key"]
    visitor = app.test_client()
    report(visitor, key, "<b>offensive</b>")
    report(visitor, key)
    page = admin_client.get("/admin/").get_data(as_text=True)
    assert "Reported by visitors (1)" in page
    assert "2 reports" in page
    assert "&lt;b&gt;offensive&lt;/b&gt;" in page and "<b>offensive" not in page  # escaped
    assert f"/admin/reports/{key}/take-down" in page and f"/admin/reports/{key}/dismiss" in page


def test_take_down_from_a_report(app: Flask, admin_client: FlaskClient) -> None:
    key = render_via_api(admin_client, "Take it away")["key"]
    report(app.test_client(), key, "spam")
    page = admin_client.get("/admin/")
    response = admin_client.post(
        f"/admin/reports/{key}/take-down",
        data={"reason": "Reported by visitors: spam", "csrf_token": csrf_from(page)},
    )
    assert response.status_code == 303
    record = site(app).render.records.get(key)
    assert record is not None and record.status == RenderStatus.BLOCKED
    assert "Reported by visitors: spam" in (record.error or "")
    assert site(app).reports.pending() == []
    assert "Reported by visitors" not in admin_client.get("/admin/").get_data(as_text=True)


def test_dismiss_keeps_the_gif(app: Flask, admin_client: FlaskClient) -> None:
    key = render_via_api(admin_client, "Harmless")["key"]
    report(app.test_client(), key)
    page = admin_client.get("/admin/")
    response = admin_client.post(
        f"/admin/reports/{key}/dismiss", data={"csrf_token": csrf_from(page)}
    )
    assert response.status_code == 303
    assert site(app).reports.pending() == []
    record = site(app).render.records.get(key)
    assert record is not None and record.status == RenderStatus.DONE


def test_report_actions_need_a_session_and_a_token(app: Flask, admin_client: FlaskClient) -> None:
    key = render_via_api(admin_client, "Guarded")["key"]
    report(app.test_client(), key)
    assert app.test_client().post(f"/admin/reports/{key}/dismiss").status_code == 403
    assert admin_client.post(f"/admin/reports/{key}/dismiss").status_code == 400  # no CSRF
    assert len(site(app).reports.pending()) == 1
