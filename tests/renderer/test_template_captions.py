"""Predefined captions per language in template.toml (``[captions]`` with ``en = [...]``,
``de = [...]``), and the old plain list."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from loopmark.errors import TemplateInvalid
from loopmark.renderer.render import accept_caption
from loopmark.renderer.templates import MAX_PRESET_CAPTIONS, load_template
from tests.paths import DEMO_TEMPLATES

EN = ["Five more minutes", "Rise and hop"]
DE = ["Noch fünf Minuten", "Aufstehen und loshoppeln"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copytree(DEMO_TEMPLATES / "wake-up", tmp_path / "wake-up")
    return tmp_path


def set_captions(folder: Path, toml_captions: str, mode: str = "free") -> None:
    """Replace the template's captions (a table or a plain list) and its caption mode."""
    path = folder / "wake-up" / "template.toml"
    text = path.read_text()
    text = re.sub(r"(?ms)^\[captions\]\n.*?\n\n", "", text)
    text = re.sub(r"(?m)^captions = .*\n", "", text)
    text = text.replace('caption_mode = "free"', f'caption_mode = "{mode}"')
    if not toml_captions.startswith("["):  # a plain list: a top-level key, before any table
        path.write_text(f"{toml_captions}\n{text}")
        return
    head, _, tail = text.partition("\n[trim]")
    path.write_text(f"{head}\n{toml_captions}\n\n[trim]{tail}")


def test_the_demo_templates_ship_english_and_german() -> None:
    template = load_template(DEMO_TEMPLATES, "head-scratch")
    assert set(template.caption_sets) == {"en", "de"}
    assert "Plot twist" in template.captions_for("en")
    assert "Überraschende Wendung" in template.captions_for("de")
    assert len(template.captions_for("en")) == len(template.captions_for("de"))


def test_captions_by_language(folder: Path) -> None:
    set_captions(folder, f"[captions]\nde = {DE!r}\nen = {EN!r}".replace("'", '"'))
    template = load_template(folder, "wake-up")
    assert list(template.caption_sets) == ["en", "de"]  # the default language first
    assert template.captions_for("de") == tuple(DE)
    assert template.captions_for("en") == tuple(EN)
    assert template.captions_for("fr") == tuple(EN)  # none in French: the default's
    assert template.captions_for(None) == tuple(EN)
    assert template.captions == tuple(EN + DE)
    assert template.caption_language("Noch   fünf Minuten") == "de"  # as the policy folds it
    assert template.caption_language("Rise and hop") == "en"
    assert template.caption_language("My own words") is None


def test_a_plain_list_is_the_default_language(folder: Path) -> None:
    set_captions(folder, f"captions = {EN!r}".replace("'", '"'))
    template = load_template(folder, "wake-up")
    assert template.caption_sets == {"en": tuple(EN)}
    assert template.captions_for("de") == tuple(EN)
    assert template.caption_language("Rise and hop") == "en"


def test_a_language_without_the_default_is_offered_to_everyone(folder: Path) -> None:
    set_captions(folder, f"[captions]\nde = {DE!r}".replace("'", '"'))
    template = load_template(folder, "wake-up")
    assert template.captions_for("en") == tuple(DE)


def test_presets_mode_accepts_a_caption_of_any_language(folder: Path) -> None:
    set_captions(folder, f"[captions]\nen = {EN!r}\nde = {DE!r}".replace("'", '"'), "presets")
    template = load_template(folder, "wake-up")
    assert accept_caption(template, "Noch fünf Minuten") == "Noch fünf Minuten"
    assert accept_caption(template, "Rise and hop") == "Rise and hop"


@pytest.mark.parametrize(
    ("captions", "message"),
    [
        ('[captions]\nEnglish = ["Hi"]', "language code"),
        ('[captions]\nde = "Hallo"', "list of strings"),
        ("[captions]\nde = [1, 2]", "list of strings"),
        ('captions = "Hello"', "captions"),
        (f"[captions]\nde = {['x'] * (MAX_PRESET_CAPTIONS + 1)!r}".replace("'", '"'), "at most"),
    ],
)
def test_bad_caption_tables_say_what_is_wrong(folder: Path, captions: str, message: str) -> None:
    set_captions(folder, captions)
    with pytest.raises(TemplateInvalid, match=message):
        load_template(folder, "wake-up")


def test_presets_mode_needs_a_caption_in_some_language(folder: Path) -> None:
    set_captions(folder, "[captions]\nen = []\nde = []", "presets")
    with pytest.raises(TemplateInvalid, match="at least one caption"):
        load_template(folder, "wake-up")
