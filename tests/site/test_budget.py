"""GIF size budgets through the site: the brand's budget applies to templates and visitors'
clips alike, a GIF over it steps down, and the render's JSON (the API and the stored record)
says what happened."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image, ImageSequence

from loopmark.brand import DEMO_BRAND_FILE
from tests import phone_clips
from tests.site.conftest import MakeApp, render_service, render_via_api
from tests.site.test_uploads import done_json, fetch, render, upload

# The smallest budget brand.toml takes: under the small template's GIF (about 68 kB at 160 px).
TIGHT_BUDGET = 50_000


@pytest.fixture
def tight(make_app: MakeApp, tmp_path: Path) -> Flask:
    """The site with a brand whose GIF budget is TIGHT_BUDGET."""
    folder = tmp_path / "brand"
    shutil.copytree(DEMO_BRAND_FILE.parent, folder)
    path = folder / "brand.toml"
    text = path.read_text(encoding="utf-8")
    assert "max_gif_bytes = 8_000_000" in text
    path.write_text(text.replace("8_000_000", str(TIGHT_BUDGET)), encoding="utf-8")
    return make_app(LOOPMARK_BRAND_FILE=str(path))


def gif_shape(gif: bytes) -> tuple[int, int, int]:
    """A GIF's width, height and frame count."""
    with Image.open(io.BytesIO(gif)) as image:
        return image.width, image.height, sum(1 for _ in ImageSequence.Iterator(image))


def assert_recorded(app: Flask, body: dict[str, Any]) -> None:
    """The API's budget is the stored record's."""
    record = render_service(app).record(body["key"])
    assert record is not None and record.media is not None
    assert record.media["budget"] == body["budget"]
    assert record.media["bytes"] == body["budget"]["bytes"]


def test_a_gif_within_the_brands_budget_says_so(app: Flask, client: FlaskClient) -> None:
    body = render_via_api(client, "Well within")
    budget = body["budget"]
    assert budget["max_bytes"] == 8_000_000  # the demo brand's
    assert budget["fits"] is True and budget["stepped"] is False
    assert (budget["width"], budget["frame_step"]) == (body["width"], 1)
    status, gif = fetch(client, body["gif_url"])
    assert status == 200 and len(gif) == budget["bytes"] == budget["full_bytes"]
    assert_recorded(app, body)


def test_a_gif_over_the_brands_budget_steps_down_and_says_so(tight: Flask) -> None:
    client = tight.test_client()
    body = render_via_api(client, "Squeeze me")
    budget = body["budget"]
    assert budget["max_bytes"] == TIGHT_BUDGET
    assert budget["fits"] is True and budget["stepped"] is True
    assert budget["full_bytes"] > TIGHT_BUDGET >= budget["bytes"]
    # 8 fps is not halved (4 fps would stutter): the width stepped down instead.
    assert budget["frame_step"] == 1 and budget["width"] < body["width"] == 160
    status, gif = fetch(client, body["gif_url"])
    assert status == 200 and len(gif) == budget["bytes"]
    assert gif_shape(gif) == (budget["width"], budget["height"], budget["frames"])
    # The other renditions are the render's own size: the poster is 160 px wide.
    status, poster = fetch(client, body["poster_url"])
    with Image.open(io.BytesIO(poster)) as image:
        assert image.width == body["width"]
    assert_recorded(tight, body)


def test_a_visitors_clip_keeps_to_the_brands_budget(tight: Flask, tmp_path: Path) -> None:
    client = tight.test_client()
    clip = phone_clips.hevc_mov(tmp_path, rotation=90)  # a portrait phone clip, 180×320
    body = done_json(client, render(client, upload(client, clip), start=0.2, duration=1.0))
    budget = body["budget"]
    assert (body["width"], body["height"]) == (180, 320)
    assert budget["max_bytes"] == TIGHT_BUDGET and budget["fits"] and budget["stepped"]
    assert budget["full_bytes"] > TIGHT_BUDGET >= budget["bytes"]
    status, gif = fetch(client, body["gif_url"])
    assert status == 200 and len(gif) <= TIGHT_BUDGET
    width, height, frames = gif_shape(gif)
    assert (width, height, frames) == (budget["width"], budget["height"], budget["frames"])
    assert height > width  # still portrait
    assert_recorded(tight, body)
