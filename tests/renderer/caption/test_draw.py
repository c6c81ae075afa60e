"""Caption drawing: shaped scripts, colour emoji at text size, stroke around fill, determinism."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from loopmark.renderer.caption import fonts_dir, render_caption_layer
from tests.renderer.caption.helpers import BOX, WHITE, alpha, ink_box, ink_columns, save, style


def test_arabic_differs_from_unshaped_basic_layout() -> None:
    st = style(size=40)
    shaped = alpha(render_caption_layer("مرحبا", BOX, st)) > 127
    font = ImageFont.truetype(
        str(fonts_dir() / "NotoSansArabic-Bold.ttf"), 40, layout_engine=ImageFont.Layout.BASIC
    )
    basic_image = Image.new("L", BOX, 0)
    ImageDraw.Draw(basic_image).text(
        (BOX[0] / 2, BOX[1] / 2), "مرحبا", font=font, fill=255, anchor="mm"
    )
    basic = np.asarray(basic_image) > 127
    assert np.count_nonzero(shaped ^ basic) > 0.5 * np.count_nonzero(shaped)


def test_devanagari_is_shaped() -> None:
    st = style(size=40)
    word = "क्या"  # ka + virama + ya + aa: a conjunct when shaped
    shaped = render_caption_layer(word, (600, 120), st)
    save("devanagari.png", shaped)
    pieces = sum(len(ink_columns(render_caption_layer(ch, (600, 120), st))) for ch in word)
    assert len(ink_columns(shaped)) < 0.8 * pieces


def test_emoji_are_drawn_in_colour_at_text_size() -> None:
    st = style(size=40)
    layer = render_caption_layer("🎉", BOX, st)
    save("emoji.png", layer)
    rgba = np.asarray(layer).astype(int)
    opaque = rgba[..., 3] > 200
    chroma = rgba[..., :3].max(axis=2) - rgba[..., :3].min(axis=2)
    assert np.count_nonzero(opaque & (chroma > 80)) > 100
    # Comparable to the text: taller than a capital, not twice as tall.
    emoji_box = ink_box(layer)
    cap_box = ink_box(render_caption_layer("H", BOX, st))
    ratio = (emoji_box[3] - emoji_box[1]) / (cap_box[3] - cap_box[1])
    assert 1.0 < ratio < 1.7


def test_stroke_colour_surrounds_the_fill() -> None:
    red = (230, 20, 20)
    layer = render_caption_layer("I", BOX, style(size=60, stroke_width=6, stroke=red))
    rgba = np.asarray(layer).astype(int)
    row = rgba[rgba.shape[0] // 2]
    opaque = np.nonzero(row[:, 3] == 255)[0]
    first, last = row[opaque[0], :3], row[opaque[-1], :3]
    middle = row[(opaque[0] + opaque[-1]) // 2, :3]
    assert tuple(first) == red and tuple(last) == red
    assert tuple(middle) == WHITE


def test_rendering_is_deterministic() -> None:
    text = "Same caption 🎉 مرحبا 中文"
    st = style("CherryBombOne-Regular.otf", stroke_width=4)
    first = render_caption_layer(text, BOX, st)
    second = render_caption_layer(text, BOX, st)
    assert first.tobytes() == second.tobytes()
