"""Caption fonts: fallback instead of tofu, one emoji glyph per sequence, refusals, licences."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from loopmark.errors import CaptionRejected, TemplateInvalid
from loopmark.renderer.caption import (
    DEFAULT_FONT,
    EMOJI_FONT,
    FALLBACK_FONTS,
    TextStyle,
    fit_caption,
    fonts_dir,
    render_caption_layer,
)
from tests.renderer.caption.helpers import BLACK, BOX, WHITE, alpha, ink_columns, save, style


def test_emoji_sequences_are_one_glyph() -> None:
    fit = fit_caption("👩\u200d👩\u200d👧", BOX, style(size=40))
    family = render_caption_layer("👩\u200d👩\u200d👧", BOX, style(size=40))
    woman = render_caption_layer("👩", BOX, style(size=40))
    assert [run.emoji for run in fit.runs] == [True]
    # Three people drawn side by side would be about three times as wide.
    assert len(ink_columns(family)) < 1.5 * len(ink_columns(woman))


def test_glyph_missing_from_the_brand_font_falls_back_instead_of_tofu() -> None:
    size = 60
    layer = render_caption_layer("中", BOX, style("BebasNeue-Bold.otf", size=size))
    save("fallback.png", layer)
    ours = crop_mask(alpha(layer))

    def direct(font_file: str) -> np.ndarray:
        font = ImageFont.truetype(str(fonts_dir() / font_file), size)
        image = Image.new("L", BOX, 0)
        ImageDraw.Draw(image).text((50, 90), "中", font=font, fill=255, anchor="ls")
        return crop_mask(np.asarray(image))

    tofu = direct("BebasNeue-Bold.otf")  # the brand font's .notdef box
    droid = direct("DroidSansFallback.ttf")
    assert similarity(ours, droid) > 0.85
    assert similarity(ours, tofu) < 0.5


def crop_mask(a: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(a > 127)
    return a[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] > 127


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two masks aligned at their top-left corners."""
    h, w = max(a.shape[0], b.shape[0]), max(a.shape[1], b.shape[1])
    pa, pb = np.zeros((h, w), bool), np.zeros((h, w), bool)
    pa[: a.shape[0], : a.shape[1]] = a
    pb[: b.shape[0], : b.shape[1]] = b
    return np.count_nonzero(pa & pb) / np.count_nonzero(pa | pb)


def test_fallback_runs_share_the_baseline() -> None:
    fit = fit_caption("Hello 中文", BOX, style("Lobster-Regular.otf", size=40))
    assert len({run.font for run in fit.runs}) == 2
    assert len({run.baseline for run in fit.runs}) == 1


@pytest.mark.parametrize("text", ["\ue000", "ok \U000f0000", "\u0378", "\U0001fbff\u0378"])
def test_character_no_font_has_is_rejected(text: str) -> None:
    with pytest.raises(CaptionRejected) as caught:
        render_caption_layer(text, BOX, style())
    assert caught.value.code == "caption_unsupported_character"


def test_missing_brand_font_is_a_template_error(tmp_path: Path) -> None:
    st = TextStyle(font=tmp_path / "nope.ttf", fill=WHITE, stroke=BLACK, stroke_width=0)
    with pytest.raises(TemplateInvalid):
        render_caption_layer("Hi", BOX, st)


def test_every_shipped_font_is_listed_with_a_licence() -> None:
    directory = fonts_dir()
    readme = (directory / "README.md").read_text(encoding="utf-8")
    shipped = sorted(p.name for p in directory.iterdir() if p.suffix in (".ttf", ".otf"))
    for name in (DEFAULT_FONT, EMOJI_FONT, *FALLBACK_FONTS):
        assert name in shipped
    for name in shipped:
        assert name in readme, f"{name} is not listed in static/fonts/README.md"
    for licence in re.findall(r"licenses/[\w.-]+\.txt", readme):
        assert (directory / licence).is_file(), licence
