"""The site notes which renders are asked for (share page, result page, short links) for
retention, in memory, and the hits reach the records when the services close."""

from __future__ import annotations

from loopmark.records.retention import open_retention_records
from tests.site.conftest import MakeApp, render_via_api, site_services


def test_pages_note_the_renders_they_show(make_app: MakeApp) -> None:
    app = make_app()
    client = app.test_client()
    shared = render_via_api(client, "Shared")["key"]
    linked = render_via_api(client, "Linked")["key"]
    unseen = render_via_api(client, "Unseen")["key"]
    assert client.get(f"/s/{shared}").status_code == 200
    assert client.get(f"/m/{linked}.gif").status_code == 302
    services = site_services(app)
    retention = open_retention_records(services.settings.records_url)
    try:
        assert retention.last_hits([shared, linked]) == {}  # not on the request path
        services.hits.flush()
        hits = retention.last_hits([shared, linked, unseen])
        assert set(hits) == {shared, linked}
    finally:
        retention.close()
