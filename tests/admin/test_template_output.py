"""The template editor's GIF settings (issue 12): the stabilise distance (tuned at preparation,
shown from the prepared artifacts' manifest, overridable) and the GIF size budget (the brand's
unless the template names its own), through the real admin: log in, edit, save, template.toml,
the new version prepared and its render key."""

from __future__ import annotations

import html as htmllib
import json
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from loopmark.admin.template_files import format_gif_budget, parse_gif_budget
from loopmark.renderer.prepare import PreparedTemplate
from tests.admin.conftest import site
from tests.admin.test_templates import edit_form, toml_of, wait_ready

CAPTION = "Hop on"


def prepared_now(app: Flask) -> PreparedTemplate:
    catalog = site(app).templates
    return catalog.prepared(catalog.get("small", enabled_only=False))


def manifest(prepared: PreparedTemplate) -> dict[str, object]:
    meta: dict[str, object] = json.loads((prepared.folder / "meta.json").read_text())
    return meta


def input_tag(page: str, field_id: str) -> str:
    match = re.search(rf'<input[^>]*id="{field_id}"[^>]*>', page)
    assert match is not None, f"no input {field_id}"
    return htmllib.unescape(match.group(0))


def render_key(client: FlaskClient) -> str:
    response = client.post("/api/renders", json={"template": "small", "caption": CAPTION})
    assert response.status_code in (200, 202), response.get_data(as_text=True)
    key: str = response.get_json()["key"]
    return key


def save(client: FlaskClient, **changes: object) -> None:
    response = client.post("/admin/templates/small", data=edit_form(client, **changes))
    assert response.status_code == 303, response.get_data(as_text=True)
    assert wait_ready(client, "small")["state"] == "ready"


def test_stabilise_and_budget_round_trip(app: Flask, admin_client: FlaskClient) -> None:
    # Automatic: the editor shows what preparation tuned, read from the artifacts' manifest.
    save(admin_client)
    automatic = prepared_now(app)
    meta = manifest(automatic)
    assert meta["stabilise_tuned"] is True
    tuned = f"{float(meta['stabilise_distance']):g}"  # type: ignore[arg-type]
    page = admin_client.get("/admin/templates/small").get_data(as_text=True)
    field = input_tag(page, "stabilise_distance")
    assert f'placeholder="{tuned} (automatic)"' in field and 'value=""' in field
    assert f"it chose {tuned} for these frames" in htmllib.unescape(page)
    budget = input_tag(page, "max_gif_bytes")
    assert 'placeholder="8 MB (the brand\'s)"' in budget and 'value=""' in budget
    assert "X from its phone apps 5 MB" in htmllib.unescape(page)
    automatic_key = render_key(admin_client)

    # An override: written to template.toml, a new version prepared with it.
    override = 14 if tuned != "14" else 12
    save(admin_client, stabilise_distance=str(override), max_gif_bytes="5 MB")
    output = toml_of(app)["output"]
    assert output["stabilise_distance"] == override  # type: ignore[index]
    assert output["max_gif_bytes"] == 5_000_000  # type: ignore[index]
    overridden = prepared_now(app)
    assert overridden.template.version != automatic.template.version
    assert overridden.template.max_gif_bytes == 5_000_000
    assert manifest(overridden)["stabilise_tuned"] is False
    assert overridden.stabilise_distance == override and not overridden.stabilise_tuned
    budget_key = render_key(admin_client)
    assert budget_key != automatic_key
    # The form shows the override, and still names what automatic tuning chose.
    page = admin_client.get("/admin/templates/small").get_data(as_text=True)
    assert f'value="{override}.0"' in input_tag(page, "stabilise_distance")
    assert f"it chose {tuned} for these frames" in htmllib.unescape(page)
    assert 'value="5 MB"' in input_tag(page, "max_gif_bytes")

    # No budget at all (0) keeps the version, yet changes the render key.
    save(admin_client, stabilise_distance=str(override), max_gif_bytes="0")
    assert toml_of(app)["output"]["max_gif_bytes"] == 0  # type: ignore[index]
    template = site(app).templates.get("small", enabled_only=False)
    assert template.version == overridden.template.version and template.max_gif_bytes is None
    assert render_key(admin_client) not in (budget_key, automatic_key)
    assert 'value="0"' in input_tag(
        admin_client.get("/admin/templates/small").get_data(as_text=True), "max_gif_bytes"
    )

    # Emptied: automatic again, the brand's budget; the keys are back where they were.
    save(admin_client, stabilise_distance="", max_gif_bytes="")
    output = toml_of(app)["output"]
    assert "stabilise_distance" not in output and "max_gif_bytes" not in output  # type: ignore[operator]
    assert prepared_now(app).template.version == automatic.template.version
    assert render_key(admin_client) == automatic_key


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("stabilise_distance", "40", "The stabilise distance goes from 0 to 32; leave it empty"),
        ("stabilise_distance", "-1", "The stabilise distance goes from 0 to 32; leave it empty"),
        ("stabilise_distance", "nan", "Please enter a number."),
        ("max_gif_bytes", "8", "8 bytes is far too small for a GIF: did you mean 8 MB?"),
        ("max_gif_bytes", "2 GB", "Enter a size from 0.05 MB to 1000 MB"),
        ("max_gif_bytes", "49999", "Enter a size from 0.05 MB to 1000 MB"),
    ],
)
def test_bad_values_are_refused_beside_their_field(
    app: Flask, admin_client: FlaskClient, field: str, value: str, message: str
) -> None:
    before = toml_of(app)
    response = admin_client.post(
        "/admin/templates/small", data=edit_form(admin_client, **{field: value})
    )
    assert response.status_code == 422
    page = htmllib.unescape(response.get_data(as_text=True))
    assert re.search(rf'<input[^>]*aria-invalid="true"[^>]*id="{field}"', page)
    error = re.search(rf'<p class="field-error" id="{field}-error"[^>]*>([^<]*)</p>', page)
    assert error is not None and message in error.group(1)
    assert toml_of(app) == before


def test_the_fields_speak_german(admin_client: FlaskClient) -> None:
    page = admin_client.get("/admin/templates/small", headers={"Accept-Language": "de"})
    text = htmllib.unescape(page.get_data(as_text=True))
    assert "Stabilisierungsabstand" in text and "Größenlimit für das GIF" in text
    response = admin_client.post(
        "/admin/templates/small",
        data=edit_form(admin_client, max_gif_bytes="8"),
        headers={"Accept-Language": "de"},
    )
    assert response.status_code == 422
    assert "meintest du 8 MB?" in htmllib.unescape(response.get_data(as_text=True))


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("8 MB", 8_000_000),
        ("7.5 MB", 7_500_000),
        ("7,5 MB", 7_500_000),
        ("750 kB", 750_000),
        ("8,000,000", 8_000_000),
        ("8000000", 8_000_000),
        ("0", 0),
    ],
)
def test_budgets_read_as_typed_and_back(app: Flask, text: str, size: int) -> None:
    with app.test_request_context():
        assert parse_gif_budget(text) == size
        assert parse_gif_budget(format_gif_budget(size)) == size
