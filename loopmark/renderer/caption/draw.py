"""Caption drawing: a laid-out caption as an RGBA layer, strokes under fills, emoji on top."""

from __future__ import annotations

from PIL import Image, ImageDraw

from loopmark.renderer.caption.fit import CaptionFit, PlacedRun, TextStyle, fit_caption
from loopmark.renderer.caption.fonts import EMOJI_STRIKE_PX, emoji_scale, face


def render_caption_layer(text: str, size: tuple[int, int], style: TextStyle) -> Image.Image:
    """RGBA image of exactly `size` (the template's text box), transparent where there is no text.

    Deterministic: same inputs → same pixels. Raises CaptionRejected with code
    ``caption_does_not_fit`` or ``caption_unsupported_character``, and TemplateInvalid when the
    style's font file is missing.
    """
    fit = fit_caption(text, size, style)
    return draw_fit(fit, size, style)


def draw_fit(fit: CaptionFit, size: tuple[int, int], style: TextStyle) -> Image.Image:
    """Draw a laid-out caption: strokes under fills for every run, colour emoji on top."""
    stroke_mask = Image.new("L", size, 0)
    fill_mask = Image.new("L", size, 0)
    emoji_layer: Image.Image | None = None
    stroke_draw = ImageDraw.Draw(stroke_mask)
    fill_draw = ImageDraw.Draw(fill_mask)
    for run in fit.runs:
        if run.emoji:
            emoji_layer = emoji_layer or Image.new("RGBA", size, (0, 0, 0, 0))
            _paste_emoji(emoji_layer, run, fit.size)
            continue
        font = face(str(run.font), fit.size)
        position = (run.x, run.baseline)
        if fit.stroke_width > 0:
            stroke_draw.text(
                position,
                run.text,
                font=font,
                fill=255,
                anchor="ls",
                direction=run.direction,
                stroke_width=fit.stroke_width,
                stroke_fill=255,
            )
        fill_draw.text(
            position, run.text, font=font, fill=255, anchor="ls", direction=run.direction
        )
    layer = Image.new("RGBA", size, (*style.stroke, 0))
    if fit.stroke_width > 0:
        layer.putalpha(stroke_mask)
    fill_layer = Image.new("RGBA", size, (*style.fill, 0))
    fill_layer.putalpha(fill_mask)
    layer.alpha_composite(fill_layer)
    if emoji_layer is not None:
        layer.alpha_composite(emoji_layer)
    return layer


def _paste_emoji(layer: Image.Image, run: PlacedRun, size: int) -> None:
    font = face(str(run.font), EMOJI_STRIKE_PX)
    left, top, right, bottom = font.getbbox(run.text, anchor="ls", direction=run.direction)
    if right <= left or bottom <= top:
        return
    # FreeType boxes are whole pixels; Pillow's stubs type them as floats.
    glyphs = Image.new("RGBA", (int(right - left), int(bottom - top)), (0, 0, 0, 0))
    ImageDraw.Draw(glyphs).text(
        (-left, -top),
        run.text,
        font=font,
        anchor="ls",
        direction=run.direction,
        embedded_color=True,
    )
    scale = emoji_scale(size)
    width = max(1, round(glyphs.width * scale))
    height = max(1, round(glyphs.height * scale))
    # Pillow resamples RGBA with premultiplied alpha, so edges do not darken.
    scaled = glyphs.resize((width, height), Image.Resampling.LANCZOS)
    x, y = round(run.x + left * scale), round(run.baseline + top * scale)
    # alpha_composite refuses negative destinations; rounding can put an edge pixel at -1.
    crop_x, crop_y = max(0, -x), max(0, -y)
    if crop_x or crop_y:
        scaled = scaled.crop((crop_x, crop_y, scaled.width, scaled.height))
    layer.alpha_composite(scaled, dest=(x + crop_x, y + crop_y))
