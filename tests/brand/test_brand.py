"""brand.toml: the demo brand loads whole; another file replaces it; a bad file stops start-up
with one line naming the file and the field; the older slug and handle variables still override."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from loopmark.brand import DEMO_BRAND_FILE, demo_brand, load_brand
from loopmark.config import Settings
from loopmark.errors import ConfigInvalid
from tests.test_cli import assert_one_line_error, run


@pytest.fixture
def brand_dir(tmp_path: Path) -> Path:
    """A copy of the demo brand's folder to edit."""
    folder = tmp_path / "brand"
    shutil.copytree(DEMO_BRAND_FILE.parent, folder)
    return folder


def edit(folder: Path, old: str, new: str) -> Path:
    path = folder / "brand.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_the_demo_brand_is_hop_and_co() -> None:
    brand = demo_brand()
    assert (brand.name, brand.slug, brand.handle) == ("Hop & Co.", "hop-and-co", "@hopandco")
    assert brand.colours.primary == "#5b2e91" and brand.colours.background == "#fff7ec"
    assert brand.default_frame is not None and brand.default_frame.suffix == ".png"
    assert brand.card_picture is not None and brand.card_picture.is_file()
    assert brand.share.text_for("Rise & hop") == "“Rise & hop” — made with Hop & Co."
    assert brand.share.text_for(None) == brand.share.render_title
    # Braces in a caption are text, never a format field.
    assert brand.share.text_for("{0.__class__}") == "“{0.__class__}” — made with Hop & Co."
    assert brand.privacy.title == "Privacy" and brand.privacy.url is None
    assert brand.language == "en"
    german = brand.privacy.in_language("de")
    assert german.title == "Datenschutz" and german.blocks[0][0] == "p"
    assert brand.privacy.in_language("fr") is brand.privacy  # not written in French
    kinds = {kind for kind, _ in brand.privacy.blocks}
    assert kinds == {"h2", "p"}
    assert Settings.from_env({}).brand == brand


def test_another_brand_file_replaces_the_demo(brand_dir: Path) -> None:
    edit(brand_dir, 'name = "Hop & Co."', 'name = "Fizz Ltd"')
    edit(brand_dir, 'slug = "hop-and-co"', 'slug = "fizz"')
    edit(brand_dir, 'primary = "#5b2e91"', 'primary = "#0A7F3F"')
    path = edit(
        brand_dir, 'title = "Privacy"\nfile = "privacy.txt"',
        'title = "Privacy"\nurl = "https://fizz.example/privacy"',
    )  # fmt: skip
    settings = Settings.from_env({"LOOPMARK_BRAND_FILE": str(path)})
    brand = settings.brand
    assert (brand.name, brand.slug, settings.brand_slug) == ("Fizz Ltd", "fizz", "fizz")
    assert brand.colours.primary == "#0a7f3f"  # normalised
    assert brand.privacy.url == "https://fizz.example/privacy" and not brand.privacy.blocks
    assert brand.version != demo_brand().version


def test_the_older_variables_override_slug_and_handle() -> None:
    settings = Settings.from_env(
        {"LOOPMARK_BRAND_SLUG": "hop-two", "LOOPMARK_TWITTER_SITE": "Hop_2"}
    )
    assert settings.brand.slug == settings.brand_slug == "hop-two"
    assert settings.brand.handle == settings.twitter_site == "@Hop_2"
    assert settings.brand.name == "Hop & Co."


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('primary = "#5b2e91"', 'primary = "purple"', "colours.primary must be a colour like"),
        ('accent = "#ff7a1a"', 'accent = "#ff7a1"', "colours.accent must be a colour like"),
        ('ink = "#2a1740"\n', "", "colours.ink must be a colour like #5b2e91, not missing"),
        ('name = "Hop & Co."', 'name = ""', "name is missing"),
        ('name = "Hop & Co."', "", "name is missing"),
        ('slug = "hop-and-co"', 'slug = "Hop & Co"', "slug must be lowercase"),
        ('handle = "@hopandco"', 'handle = "@not a handle"', "handle must be an X handle"),
        ('render_title = "A GIF made with Hop & Co."', "", "share.render_title is missing"),
        ('default_frame = "frame.png"', 'default_frame = "../frame.png"', "default_frame"),
        ('file = "terms.txt"', 'file = "nowhere.txt"', "pages.terms"),
        ('file = "terms.txt"', 'url = "ftp://x"', "pages.terms.url must start with https://"),
        ("[share]", "[share", "not valid TOML"),
        ("max_gif_bytes = 8_000_000", "max_gif_bytes = 12", "output.max_gif_bytes must be"),
        ("max_gif_bytes = 8_000_000", 'max_gif_bytes = "8 MB"', "output.max_gif_bytes must be"),
        ("max_gif_bytes = 8_000_000", "max_gif_bytes = 8e6", "whole number of bytes"),
        ("max_gif_bytes = 8_000_000", "max_gif_bytes = -1", "or 0 for none"),
        ("[output]\nmax_gif_bytes = 8_000_000", 'output = "big"', "[output] must be a table"),
        ('language = "en"', 'language = "English"', "language must be a code like en or de"),
        ("[pages.terms.de]", "[pages.terms.Deutsch]", "'Deutsch' is not a language code"),
        ('file = "terms.de.txt"', 'file = "nowhere.de.txt"', "pages.terms.de"),
    ],
)
def test_a_bad_brand_file_stops_start_up_with_one_line(
    brand_dir: Path, old: str, new: str, message: str
) -> None:
    path = edit(brand_dir, old, new)
    with pytest.raises(ConfigInvalid, match="brand file") as caught:
        Settings.from_env({"LOOPMARK_BRAND_FILE": str(path)})
    assert message in caught.value.reason
    assert "\n" not in caught.value.reason


def test_a_missing_brand_file_is_named() -> None:
    with pytest.raises(ConfigInvalid, match="LOOPMARK_BRAND_FILE"):
        load_brand(Path("/nowhere/brand.toml"))


def test_the_command_line_names_a_bad_brand_file_in_one_line(brand_dir: Path) -> None:
    path = edit(brand_dir, 'accent = "#ff7a1a"', 'accent = "orange"')
    for variables in (
        {"LOOPMARK_BRAND_FILE": str(path)},
        {"LOOPMARK_TWITTER_SITE": "not a handle"},
    ):
        proc = run("templates", "list", env=variables)
        line = assert_one_line_error(proc)
        assert line.startswith("loopmark: ")
    assert (
        "colours.accent must be a colour like #5b2e91, not 'orange'"
        in run("templates", "list", env={"LOOPMARK_BRAND_FILE": str(path)}).stderr
    )


def test_the_brand_sets_the_gif_budget_every_template_defaults_to(brand_dir: Path) -> None:
    assert demo_brand().max_gif_bytes == 8_000_000  # under Discord's and email's ~10 MB
    path = edit(brand_dir, "max_gif_bytes = 8_000_000", "max_gif_bytes = 0")
    assert load_brand(path).max_gif_bytes is None  # 0: no budget
    path = edit(brand_dir, "max_gif_bytes = 0", "")
    assert load_brand(path).max_gif_bytes is None  # none given: no budget


def test_the_command_line_refuses_a_bad_gif_budget_in_one_line(brand_dir: Path) -> None:
    path = edit(brand_dir, "max_gif_bytes = 8_000_000", "max_gif_bytes = 10")
    line = assert_one_line_error(run("templates", "list", env={"LOOPMARK_BRAND_FILE": str(path)}))
    assert "output.max_gif_bytes must be a whole number of bytes" in line
