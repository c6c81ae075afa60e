"""template.toml parsing and versioning."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from loopmark.errors import TemplateInvalid, UnknownTemplate
from loopmark.renderer.templates import load_template, load_templates
from tests.paths import DEMO_TEMPLATES


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    shutil.copytree(DEMO_TEMPLATES / "wake-up", tmp_path / "wake-up")
    return tmp_path


def edit(folder: Path, old: str, new: str) -> None:
    toml = folder / "template.toml"
    text = toml.read_text()
    assert old in text
    toml.write_text(text.replace(old, new))


def test_demo_templates_load_with_their_settings() -> None:
    templates = {t.id: t for t in load_templates(DEMO_TEMPLATES)}
    assert {"wake-up", "big-stretch", "head-scratch"} <= set(templates)
    wake = templates["wake-up"]
    assert wake.width == 480 and wake.fps == 12
    assert wake.style.font.name == "BebasNeue-Bold.otf"
    assert wake.style.fill == (255, 255, 255)
    assert templates["head-scratch"].caption_mode == "presets"
    assert templates["big-stretch"].loop == "boomerang"
    # Named per language ([name]); a language without a name gets the default language's.
    assert (wake.name, wake.name_for("de"), wake.name_for("fr")) == (
        "Wake up",
        "Aufwachen",
        "Wake up",
    )


@pytest.mark.parametrize("template_id", ["nope", "../etc", "Wake-Up", "", "a" * 41])
def test_unknown_or_malformed_ids_are_unknown(template_id: str) -> None:
    with pytest.raises(UnknownTemplate):
        load_template(DEMO_TEMPLATES, template_id)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('loop = "forward"', 'loop = "sideways"', "loop"),
        ("fps = 12", "fps = 60", "fps"),
        ("width = 480", "width = 4000", "width"),
        ('fill = "#ffffff"', 'fill = "white-ish"', "colour"),
        ('source = "source.mp4"', 'source = "../../etc/passwd"', "inside"),
        ('font = "BebasNeue-Bold.otf"', 'font = "../../../etc/passwd"', "font"),
        ('caption_mode = "free"', 'caption_mode = "anything"', "caption_mode"),
        ("box = [24, 176, 432, 80]", "box = [300, 176, 432, 80]", "inside"),
        ("duration = 2.2", "duration = 60", "duration"),
        ('en = "Wake up"', "en = ", "template.toml"),
        ('de = "Aufwachen"', 'Deutsch = "Aufwachen"', "not a language code"),
        ('de = "Aufwachen"', "de = 7", "name.de must be text"),
        ("speed = 1.0", "speed = 1.0\nstabilise_distance = 99", "stabilise_distance"),
        ("speed = 1.0", 'speed = 1.0\nstabilise_distance = "far"', "stabilise_distance"),
        ("speed = 1.0", "speed = 1.0\nmax_gif_bytes = 1000", "max_gif_bytes must be"),
        ("speed = 1.0", "speed = 1.0\nmax_gif_bytes = 2_000_000_000", "max_gif_bytes"),
        ("speed = 1.0", "speed = 1.0\nmax_gif_bytes = 5.5e6", "max_gif_bytes"),
        ("speed = 1.0", "speed = 1.0\nmax_gif_bytes = true", "max_gif_bytes"),
        ("speed = 1.0", 'speed = 1.0\npalette_spans = "yes"', "palette_spans must be true"),
    ],
)
def test_invalid_settings_say_what_is_wrong(copy: Path, old: str, new: str, message: str) -> None:
    edit(copy / "wake-up", old, new)
    with pytest.raises(TemplateInvalid, match=message):
        load_template(copy, "wake-up")


def test_version_changes_with_settings_and_files(copy: Path) -> None:
    folder = copy / "wake-up"
    original = load_template(copy, "wake-up").version
    assert load_template(copy, "wake-up").version == original
    edit(folder, "start = 0.0", "start = 0.5")
    moved = load_template(copy, "wake-up").version
    assert moved != original
    (folder / "frame.png").write_bytes((folder / "frame.png").read_bytes() + b"\0")
    assert load_template(copy, "wake-up").version != moved


def test_a_stabilise_distance_override_is_read_and_versioned(copy: Path) -> None:
    tuned = load_template(copy, "wake-up")
    assert tuned.stabilise_distance is None  # tuned at preparation
    edit(copy / "wake-up", "speed = 1.0", "speed = 1.0\nstabilise_distance = 4")
    fixed = load_template(copy, "wake-up")
    assert fixed.stabilise_distance == 4.0
    assert fixed.version != tuned.version  # prepared again with it


def test_palette_spans_are_asked_for_and_versioned(copy: Path) -> None:
    one = load_template(copy, "wake-up")
    assert one.palette_spans is False  # not tried unless asked: about a second of preparation
    edit(copy / "wake-up", "speed = 1.0", "speed = 1.0\npalette_spans = true")
    spans = load_template(copy, "wake-up")
    assert spans.palette_spans is True
    assert spans.version != one.version  # prepared again, trying them


def test_a_gif_budget_is_the_templates_own_else_the_brands(copy: Path) -> None:
    plain = load_template(copy, "wake-up")
    assert plain.max_gif_bytes is None
    assert load_template(copy, "wake-up", default_max_gif_bytes=8_000_000).max_gif_bytes == (
        8_000_000
    )
    edit(copy / "wake-up", "speed = 1.0", "speed = 1.0\nmax_gif_bytes = 5_000_000")
    own = load_template(copy, "wake-up", default_max_gif_bytes=8_000_000)
    assert own.max_gif_bytes == 5_000_000
    # Preparation never reads the budget: the same version, the same prepared frames.
    assert own.version == plain.version
    edit(copy / "wake-up", "max_gif_bytes = 5_000_000", "max_gif_bytes = 0")
    assert load_template(copy, "wake-up", default_max_gif_bytes=8_000_000).max_gif_bytes is None
