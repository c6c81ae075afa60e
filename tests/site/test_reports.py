""" "Report this GIF": linked from share pages, a form that keeps the report for the admin,
404 for a key that is no render, 410 once taken down, limited per address with Retry-After."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.site.conftest import MakeApp, render_via_api, site_services
from tests.site.test_pages import Page


def test_share_page_links_to_the_report_form(client: FlaskClient) -> None:
    key = render_via_api(client, "Report me")["key"]
    page = Page(client.get(f"/s/{key}").get_data(as_text=True))
    hrefs = [attrs.get("href") for tag, attrs in page.elements if tag == "a"]
    assert f"/s/{key}/report" in hrefs
    with client.get(f"/s/{key}/report") as response:
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-store"
        form = Page(response.get_data(as_text=True))
    assert form.one("robots") == "noindex"
    assert ("textarea", {"id": "report-reason", "name": "reason", "rows": "4",
                         "maxlength": "500", "dir": "auto"}) in form.elements  # fmt: skip


def test_a_report_lands_with_its_reason(app: Flask, client: FlaskClient) -> None:
    key = render_via_api(client, "Report me too")["key"]
    with client.post(f"/s/{key}/report", data={"reason": "Not nice\u202e"}) as response:
        assert response.status_code == 200
        assert "Thank you" in response.get_data(as_text=True)
    client.post(f"/s/{key}/report", data={})  # the reason is optional
    [reported] = site_services(app).reports.pending()
    assert reported.key == key
    assert sorted(r.reason for r in reported.reports) == ["", "Not nice"]


def test_unknown_malformed_and_taken_down_keys(app: Flask, client: FlaskClient) -> None:
    assert client.get("/s/" + "a" * 24 + "/report").status_code == 404
    assert client.post("/s/" + "a" * 24 + "/report").status_code == 404
    assert client.get("/s/NOTAKEY/report").status_code == 404
    key = render_via_api(client, "Gone soon")["key"]
    site_services(app).render.take_down(key, reason="test")
    with client.post(f"/s/{key}/report") as response:
        assert response.status_code == 410
        assert "taken down" in response.get_data(as_text=True)
    assert site_services(app).reports.pending() == []


def test_reports_are_limited_per_address(make_app: MakeApp) -> None:
    app = make_app(LOOPMARK_RATE_LIMITS="on")
    client = app.test_client()
    key = render_via_api(client, "Flooded")["key"]
    answers = [client.post(f"/s/{key}/report").status_code for _ in range(6)]
    assert answers == [200] * 5 + [429]
    with client.post(f"/s/{key}/report") as response:
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) > 0
        assert "try again in" in response.get_data(as_text=True)
    elsewhere = {"REMOTE_ADDR": "192.0.2.9"}
    assert client.post(f"/s/{key}/report", environ_base=elsewhere).status_code == 200
    assert len(site_services(app).reports.pending()[0].reports) == 6


def test_an_overlong_reason_is_a_400_with_the_form(client: FlaskClient) -> None:
    key = render_via_api(client, "Wordy")["key"]
    with client.post(f"/s/{key}/report", data={"reason": "x" * 501}) as response:
        assert response.status_code == 400
        assert "under 500 characters" in response.get_data(as_text=True)
