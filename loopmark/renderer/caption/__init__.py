"""Caption layout: wrap, auto-fit, stroke, bidi, font fallback and colour emoji into an RGBA layer.

The caption never reaches FFmpeg as text: this package turns it into a transparent image of the
template's text box, which the renderer overlays. Pillow with raqm (HarfBuzz + FriBiDi) shapes
each run; this package does what Pillow does not: pick a font per grapheme cluster (`fonts`),
order mixed-direction runs (`bidi`), find where lines may break (`linebreak`), choose the
largest size that fits and balance the lines at that size (`fit`, `wrap`, `balance`), and draw
strokes, fills and colour emoji (`draw`).
"""

from loopmark.renderer.caption.draw import draw_fit, render_caption_layer
from loopmark.renderer.caption.fit import CaptionFit, PlacedRun, TextStyle, fit_caption
from loopmark.renderer.caption.fonts import (
    DEFAULT_FONT,
    EMOJI_FONT,
    FALLBACK_FONTS,
    default_font,
    fonts_dir,
)

__all__ = [
    "DEFAULT_FONT",
    "EMOJI_FONT",
    "FALLBACK_FONTS",
    "CaptionFit",
    "PlacedRun",
    "TextStyle",
    "default_font",
    "draw_fit",
    "fit_caption",
    "fonts_dir",
    "render_caption_layer",
]
