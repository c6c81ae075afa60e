"""The site's in-memory gallery across apps: the timing it reads, and another app over the
same records catching up after its version check (the gallery itself: tests/service)."""

from __future__ import annotations

import time
from typing import Any

from flask.testing import FlaskClient

from tests.site.conftest import MakeApp, site_services
from tests.site.test_graphql import curate, gallery_keys

CHECK_S = 5.0
REFRESH_S = 60.0


def test_the_app_reads_the_gallery_timing(make_app: MakeApp) -> None:
    app = make_app(
        LOOPMARK_GALLERY_REFRESH_SECONDS="120", LOOPMARK_GALLERY_VERSION_CHECK_SECONDS="2"
    )
    gallery = site_services(app).gallery
    assert (gallery.refresh_s, gallery.version_check_s) == (120.0, 2.0)


def first_page(client: FlaskClient) -> list[str]:
    return gallery_keys(client)


def test_a_second_app_over_the_same_records_sees_an_add_after_its_check_interval(
    make_app: MakeApp,
) -> None:
    admin_app = make_app()
    check_s = 0.05
    watching = make_app(LOOPMARK_GALLERY_VERSION_CHECK_SECONDS=str(check_s))
    # A third app whose interval is far away keeps its copy: the bound is the interval.
    slow = make_app(LOOPMARK_GALLERY_VERSION_CHECK_SECONDS="3600")
    clients: dict[str, Any] = {
        "watching": watching.test_client(),
        "slow": slow.test_client(),
    }
    assert first_page(clients["watching"]) == []
    assert first_page(clients["slow"]) == []
    [added] = curate(admin_app, ["Seen elsewhere"])
    assert gallery_keys(admin_app.test_client()) == [added]  # the admin's process: at once
    time.sleep(check_s * 2)  # past the interval (a lower bound, never a deadline)
    assert first_page(clients["watching"]) == [added]
    assert first_page(clients["slow"]) == []
