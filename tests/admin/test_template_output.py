"""The template editor's GIF settings (issue 12): the stabilise distance (tuned at preparation,
shown from the prepared artifacts' manifest, overridable) and the GIF size budget (the brand's
unless the template names its own), through the real admin: log in, edit, save, template.toml,
the new version prepared and its render key."""

from __future__ import annotations

import html as htmllib
import json
import re
import shutil
from html.parser import HTMLParser

import pytest
from flask import Flask
from flask.testing import FlaskClient

from loopmark.admin.template_files import format_gif_budget, parse_gif_budget
from loopmark.renderer.prepare import PreparedTemplate
from tests.admin.conftest import site
from tests.admin.test_templates import edit_form, templates_dir, toml_of, wait_ready
from tests.paths import DEMO_TEMPLATES
from tests.renderer.test_palette_groups import local_tables
from tests.site.conftest import render_via_api

CAPTION = "Hop on"
TRIAL = re.compile(r"<span data-palette-trial>([^<]*)</span>")
EFFECT = re.compile(r"gave ([+-][0-9.]+) SSIM for ([+-][0-9.]+) % bytes against one palette")


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
    assert output["stabilise_distance"] == override
    assert output["max_gif_bytes"] == 5_000_000
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
    assert toml_of(app)["output"]["max_gif_bytes"] == 0
    template = site(app).templates.get("small", enabled_only=False)
    assert template.version == overridden.template.version and template.max_gif_bytes is None
    assert render_key(admin_client) not in (budget_key, automatic_key)
    assert 'value="0"' in input_tag(
        admin_client.get("/admin/templates/small").get_data(as_text=True), "max_gif_bytes"
    )

    # Emptied: automatic again, the brand's budget; the keys are back where they were.
    save(admin_client, stabilise_distance="", max_gif_bytes="")
    output = toml_of(app)["output"]
    assert "stabilise_distance" not in output and "max_gif_bytes" not in output
    assert prepared_now(app).template.version == automatic.template.version
    assert render_key(admin_client) == automatic_key


def page_of(client: FlaskClient, template_id: str = "small") -> str:
    response = client.get(f"/admin/templates/{template_id}")
    assert response.status_code == 200
    return htmllib.unescape(response.get_data(as_text=True))


def trial_said(page: str) -> str:
    """What the editor says preparation measured of a palette per span ("" when nothing)."""
    match = TRIAL.search(page)
    return "" if match is None else match.group(1)


def effect_said(page: str) -> tuple[float, float]:
    """The SSIM and the bytes (relative) the editor says a palette per span gave."""
    match = EFFECT.search(trial_said(page))
    assert match is not None, trial_said(page)
    return float(match.group(1)), float(match.group(2)) / 100


def recorded_effect(prepared: PreparedTemplate) -> tuple[float, float]:
    """The same, from the prepared artifacts' manifest."""
    one, spans = manifest(prepared)["palette_choice"]["tried"]  # type: ignore[index]
    return spans["ssim"] - one["ssim"], spans["bytes"] / one["bytes"] - 1


def ticked(page: str) -> bool:
    return re.search(r"\bchecked\b", input_tag(page, "palette_spans")) is not None


def test_palette_spans_round_trip(app: Flask, admin_client: FlaskClient) -> None:
    # Off by default: one palette, no trial; the help says what the setting trades.
    save(admin_client)
    one = prepared_now(app)
    one_key = render_key(admin_client)
    page = page_of(admin_client)
    assert not ticked(page)
    assert "a palette of its own for the later part of the loop" in page
    assert "Preparing the frames takes a second or two longer" in page

    # On: written to template.toml, a new version whose preparation tries it; new render keys.
    save(admin_client, palette_spans="y")
    assert toml_of(app)["output"]["palette_spans"] is True
    short = prepared_now(app)
    assert short.template.palette_spans and short.template.version != one.template.version
    assert [o["palettes"] for o in manifest(short)["palette_choice"]["tried"]] == [1]  # type: ignore[index]
    assert render_key(admin_client) != one_key
    page = page_of(admin_client)
    assert ticked(page)
    assert trial_said(page) == (
        "These frames are too few to try it (it takes 24; this loop has 8): they keep one palette."
    )

    # Three seconds at 8 fps are enough frames: the page shows what preparation measured.
    save(admin_client, palette_spans="y", trim_start="0", trim_duration="3")
    tried = prepared_now(app)
    assert tried.frame_count == 24
    ssim, growth = recorded_effect(tried)
    page = page_of(admin_client)
    assert effect_said(page) == pytest.approx((ssim, growth), abs=0.00051)
    kept = manifest(tried)["palette_choice"]["palettes"]  # type: ignore[index]
    assert tried.grouped == (kept == 2)
    ending = "so they use it." if kept == 2 else "not worth its bytes, so they keep one palette."
    assert trial_said(page).startswith("Measured on these frames") and trial_said(page).endswith(
        ending
    )

    # Off again: the key is gone, and the editor still says what it measured with it on.
    save(admin_client, trim_start="0", trim_duration="3")
    assert "palette_spans" not in toml_of(app)["output"]
    off = prepared_now(app)
    assert not off.template.palette_spans and off.template.version != tried.template.version
    page = page_of(admin_client)
    assert not ticked(page)
    assert trial_said(page).startswith("Measured when it was last on for these frames")
    assert effect_said(page) == pytest.approx((ssim, growth), abs=0.00051)


def test_the_next_render_takes_the_setting(app: Flask, admin_client: FlaskClient) -> None:
    """Head scratch (a demo template that asks for palette spans, and keeps them): its renders
    carry local colour tables until the admin switches the setting off."""
    shutil.copytree(DEMO_TEMPLATES / "head-scratch", templates_dir(app) / "head-scratch")
    admin_client.get("/admin/templates/head-scratch")  # its preparation starts
    assert wait_ready(admin_client, "head-scratch")["state"] == "ready"
    page = page_of(admin_client, "head-scratch")
    assert ticked(page)
    assert trial_said(page).startswith("Measured on these frames")
    assert trial_said(page).endswith("so they use it.")
    assert any(local_tables(gif_of(admin_client)))

    response = admin_client.post(
        "/admin/templates/head-scratch", data=posted_form(page, palette_spans=None)
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    assert wait_ready(admin_client, "head-scratch")["state"] == "ready"
    output = toml_of(app, "head-scratch")["output"]
    assert "palette_spans" not in output and output["stabilise_distance"] == 7
    assert not any(local_tables(gif_of(admin_client)))
    page = page_of(admin_client, "head-scratch")
    assert not ticked(page)
    assert trial_said(page).endswith("and they used it.")


def gif_of(client: FlaskClient) -> bytes:
    done = render_via_api(client, "Plot twist", template="head-scratch")
    with client.get(done["gif_url"]) as response:  # closes the served file
        assert response.status_code == 200
        return response.get_data()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("stabilise_distance", "40", "The stabilise distance goes from 0 to 32; leave it empty"),
        ("stabilise_distance", "-1", "The stabilise distance goes from 0 to 32; leave it empty"),
        ("stabilise_distance", "nan", "Please enter a number."),
        ("max_gif_bytes", "8", "8 bytes is far too small for a GIF: did you mean 8 MB?"),
        ("max_gif_bytes", "2 GB", "Enter a size from 0.05 MB to 1000 MB"),
        ("max_gif_bytes", "49999", "Enter a size from 0.05 MB to 1000 MB"),
        ("palette_spans", "maybe", "Tick the box, or leave it empty."),
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


class _FormReader(HTMLParser):
    """What a browser would post from the page's template form: each input's value (a checkbox
    only when ticked), each select's chosen option, each textarea's text."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self._inside = False
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self._inside = a.get("id") == "template-form"
        if not self._inside:
            return
        name, value = a.get("name") or "", a.get("value") or ""
        if tag == "input" and name and (a.get("type") != "checkbox" or "checked" in a):
            self.fields[name] = value
        elif tag == "select":
            self._select = name
        elif tag == "option" and self._select and "selected" in a:
            self.fields[self._select] = value
        elif tag == "textarea" and name:
            self._textarea, self.fields[name] = name, ""

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self.fields[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            # A browser drops the newline that opens a textarea's text.
            text = self.fields[self._textarea]
            self.fields[self._textarea] = text.removeprefix("\r").removeprefix("\n")
            self._textarea = None


def posted_form(page: str, **changes: str | None) -> dict[str, str]:
    """The page's template form as posted, with ``changes`` (None: left out, as an unticked box)."""
    reader = _FormReader()
    reader.feed(page)
    fields: dict[str, str | None] = {**reader.fields, **changes}
    return {name: value for name, value in fields.items() if value is not None}
