"""Background preparation: a template that cannot be prepared is reported with its reason, and a
new upload that fails is not kept."""

from __future__ import annotations

import shutil
import time
import tomllib

import tomli_w
from flask import Flask
from flask.testing import FlaskClient

from loopmark.admin.preparation import preparations
from loopmark.service.catalog import DirectoryTemplateCatalog
from tests.admin.conftest import site

WAIT_SECONDS = 60.0


def broken_copy(app: Flask, template_id: str) -> DirectoryTemplateCatalog:
    """A copy of ``small`` whose text box lies below its 90 px frame: it loads, but preparing it
    fails (the height is only known once the source is probed)."""
    catalog = site(app).templates
    assert isinstance(catalog, DirectoryTemplateCatalog)
    folder = catalog.templates_dir / template_id
    shutil.copytree(catalog.templates_dir / "small", folder)
    data = tomllib.loads((folder / "template.toml").read_text())
    data["text"]["box"] = [0, 500, 96, 40]
    data["enabled"] = False
    (folder / "template.toml").write_text(tomli_w.dumps(data))
    return catalog


def wait_done(client: FlaskClient, template_id: str) -> dict[str, str]:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        state: dict[str, str] = client.get(f"/admin/templates/{template_id}/state").get_json()
        if state["state"] != "preparing" or time.monotonic() > deadline:
            return state
        time.sleep(0.05)


def test_a_failed_upload_is_reported_and_not_kept(app: Flask, admin_client: FlaskClient) -> None:
    catalog = broken_copy(app, "broken")
    with app.app_context():
        jobs = preparations(catalog)
    assert jobs.start("broken", remove_on_failure=True)
    state = wait_done(admin_client, "broken")
    assert state["state"] == "failed"
    assert "does not fit" in state["reason"]
    assert not (catalog.templates_dir / "broken").exists()
    page = admin_client.get("/admin/templates/broken")
    html = page.get_data(as_text=True)
    assert (
        page.status_code == 200 and "could not be prepared" in html and "Nothing was kept" in html
    )


def test_a_template_that_cannot_be_prepared_shows_why(
    app: Flask, admin_client: FlaskClient
) -> None:
    catalog = broken_copy(app, "kept")
    # Looking at it starts its preparation (nobody had); the list never waits for it.
    listing = admin_client.get("/admin/templates").get_data(as_text=True)
    assert "kept" in listing
    state = wait_done(admin_client, "kept")
    assert state["state"] == "failed" and "does not fit" in state["reason"]
    assert (catalog.templates_dir / "kept").is_dir()  # a template of the folder is never deleted
    assert "does not fit" in admin_client.get("/admin/templates/kept").get_data(as_text=True)
    assert admin_client.get("/admin/templates/kept/poster.jpg").status_code == 404
