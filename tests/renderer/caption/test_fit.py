"""Caption fitting: wrapping into max lines, auto-fit, stroke scaling, alignment, centring."""

from __future__ import annotations

import pytest

from loopmark.errors import CaptionRejected
from loopmark.renderer.caption import fit_caption, render_caption_layer
from tests.renderer.caption.helpers import BOX, ink_bands, ink_box, save, style


def test_long_caption_wraps_into_max_lines_inside_the_box() -> None:
    text = "When the weekend finally arrives and the coffee is still hot"
    st = style("BebasNeue-Bold.otf", stroke_width=4, max_lines=2)
    fit = fit_caption(text, BOX, st)
    layer = render_caption_layer(text, BOX, st)
    save("wrap.png", layer)
    assert layer.size == BOX and layer.mode == "RGBA"
    assert len(fit.lines) == 2
    assert " ".join(fit.lines) == text
    assert ink_bands(layer) == 2
    left, top, right, bottom = ink_box(layer)
    # Nothing clipped: the stroke keeps the ink off the box's edges.
    assert left > 0 and top > 0 and right < BOX[0] and bottom < BOX[1]


def test_auto_fit_shrinks_longer_text_and_keeps_ink_inside() -> None:
    st = style(stroke_width=3, max_size=48, min_size=12, max_lines=2)
    sizes = []
    for text in (
        "Hi",
        "A medium caption, long enough to shrink",
        "A longer caption that needs " * 3,
    ):
        fit = fit_caption(text.strip(), BOX, st)
        layer = render_caption_layer(text.strip(), BOX, st)
        left, top, right, bottom = ink_box(layer)
        assert left > 0 and top > 0 and right < BOX[0] and bottom < BOX[1], text
        sizes.append(fit.size)
    assert sizes[0] == 48
    assert sizes[0] > sizes[1] > sizes[2] >= 12
    # The ink of the fitted long caption really is smaller: compare glyph heights.
    short = render_caption_layer("H", BOX, st)
    long = render_caption_layer("H " + "word " * 20 + "H", BOX, st)
    short_h = ink_box(short)[3] - ink_box(short)[1]
    long_h = ink_box(long)[3] - ink_box(long)[1]
    assert ink_bands(long) == 2
    assert long_h < 2 * short_h


def test_caption_that_cannot_fit_at_min_size_is_rejected() -> None:
    st = style(max_size=40, min_size=30, max_lines=1)
    with pytest.raises(CaptionRejected) as caught:
        render_caption_layer("This caption is far too long for one line at thirty", BOX, st)
    assert caught.value.code == "caption_does_not_fit"


def test_box_shorter_than_one_line_is_rejected() -> None:
    with pytest.raises(CaptionRejected) as caught:
        render_caption_layer("Hi", (400, 10), style(max_size=40, min_size=20))
    assert caught.value.code == "caption_does_not_fit"


def test_stroke_width_scales_with_the_chosen_size() -> None:
    st = style(stroke_width=6, max_size=60, min_size=10)
    assert fit_caption("Hi", BOX, st).stroke_width == 6
    small = fit_caption("a caption long enough to shrink the text a lot " * 2, BOX, st)
    assert small.size < 40
    assert 1 <= small.stroke_width < 6


def test_alignment_moves_the_ink() -> None:
    text = "Short"
    left = render_caption_layer(text, BOX, style(size=40, stroke_width=3, align="left"))
    center = render_caption_layer(text, BOX, style(size=40, stroke_width=3, align="center"))
    right = render_caption_layer(text, BOX, style(size=40, stroke_width=3, align="right"))
    lbox, cbox, rbox = ink_box(left), ink_box(center), ink_box(right)
    assert lbox[0] < 10
    assert rbox[2] > BOX[0] - 10
    assert lbox[0] < cbox[0] < rbox[0]
    assert abs((cbox[0] + cbox[2]) / 2 - BOX[0] / 2) < 4
    # The same glyphs, only moved.
    assert left.crop(lbox).tobytes() == right.crop(rbox).tobytes()


def test_text_is_centred_vertically() -> None:
    layer = render_caption_layer("Centred", BOX, style(size=40))
    _, top, _, bottom = ink_box(layer)
    assert abs(top - (BOX[1] - bottom)) <= 2


def test_blank_caption_gives_an_empty_layer() -> None:
    layer = render_caption_layer("   ", BOX, style())
    assert layer.size == BOX and layer.getbbox() is None
