"""Share cards: a render's first frame (caption and branding already in its pixels) on a branded
1200×630 canvas, as a JPEG small enough for every network's link preview.

Facebook wants at least 600 px wide for a large preview and recommends 1200×630 (1.91:1); X's
``summary_large_image`` takes the same. Only brand text is drawn here, with the package's fonts
through Pillow; a visitor's caption is never text here (nor ever handed to FFmpeg), only pixels.
Pure: pixels and a brand (``loopmark.brand.Brand``, handed in: its name, colours and card
wording come from brand.toml) in, JPEG bytes out.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from loopmark.brand import Brand
from loopmark.package_data import FONTS_DIR
from loopmark.renderer.colours import Rgb, parse_hex_colour
from loopmark.renderer.rescale import KeptRescale

CARD_WIDTH = 1200
CARD_HEIGHT = 630
CARD_MAX_BYTES = 300_000  # a preview fetched on a phone: well under what networks accept
# JPEG qualities tried in turn until the card fits CARD_MAX_BYTES (the first almost always does).
CARD_QUALITIES = (85, 75, 65, 50, 35)
MARGIN_PX = 36  # around the frame, and below the brand line
BRAND_BAND_PX = 78  # the strip under the frame that carries the brand line
FRAME_BORDER_PX = 6
BRAND_FONT_FILE = "CherryBombOne-Regular.otf"
BRAND_FONT_PX = 40
HEADLINE_FONT_PX = 64


def share_card(
    frame: NDArray[np.uint8] | Image.Image,
    brand: Brand,
    *,
    line: str | None = None,
    scaled: NDArray[np.uint8] | None = None,
) -> bytes:
    """The 1200×630 JPEG share card of ``frame`` (an RGB image of any size): the frame scaled to
    fit above a brand line (``line``, by default the brand's ``share.card_line``), on the
    brand's primary colour. ``scaled``: the frame already Lanczos-scaled to
    ``card_frame_size`` (``renderer.rescale``), when the caller has it."""
    canvas = card_image(frame, brand, line=line, scaled=scaled)
    return encode_card(canvas)


def card_frame_size(width: int, height: int, *, headline: bool = False) -> tuple[int, int]:
    """The size a ``width`` × ``height`` frame is scaled to on a card (inside its border)."""
    box_w, box_h = _frame_box(headline)
    scale = min((box_w - 2 * FRAME_BORDER_PX) / width, (box_h - 2 * FRAME_BORDER_PX) / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _frame_origin(size: tuple[int, int], *, headline: bool = False) -> tuple[int, int]:
    """Where a frame scaled to ``size`` (``card_frame_size``) sits on the card: its top left."""
    box_w, box_h = _frame_box(headline)
    left = MARGIN_PX + (box_w - size[0]) // 2 if not headline else MARGIN_PX + FRAME_BORDER_PX
    return left, MARGIN_PX + (box_h - size[1]) // 2


class KeptCard:
    """``share_card(frame, brand, line=line)`` of frames that differ from ``base`` (a template's
    first frame) only in the rows ``rescale`` (its scaling to ``card_frame_size``) redoes: the
    card of ``base`` is composed at its size once, and a frame's card is a copy of it with only
    the output rows its caption reaches scaled again and pasted over; the very bytes, measured
    on a 480×270 frame as 15 → 8 ms with the encode (cold caches, as in a render). Holds the
    card (3 MB at 1200×630); ``rescale`` may serve several brands and lines."""

    def __init__(
        self,
        base: NDArray[np.uint8],
        rescale: KeptRescale,
        brand: Brand,
        *,
        line: str | None = None,
    ) -> None:
        self.brand, self.line = brand, line
        height, width = base.shape[:2]
        size = card_frame_size(width, height)
        if rescale.size != size:
            raise ValueError(f"the card's frame is {size}, not {rescale.size}")
        self.rescale = rescale
        self.canvas = card_image(base, brand, line=line, scaled=rescale.scaled)
        self.origin = _frame_origin(size)
        text = line if line is not None else brand.share.card_line
        colours = brand.colours
        _lined, text_top = _lined_background(colours.primary, colours.text, text)
        # A line reaching the frame is drawn over it (card_image): pasting rows would hide it.
        self.pastes = text_top > self.origin[1] + size[1] + FRAME_BORDER_PX

    def __call__(self, frame: NDArray[np.uint8]) -> bytes:
        if not self.pastes:
            return share_card(frame, self.brand, line=self.line, scaled=self.rescale(frame))
        top, rows = self.rescale.changed_rows(frame)
        canvas = self.canvas.copy()
        canvas.paste(rows, (self.origin[0], self.origin[1] + top))
        return encode_card(canvas)


def _frame_box(headline: bool) -> tuple[int, int]:
    box_w = CARD_WIDTH - 2 * MARGIN_PX
    if headline:
        box_w = box_w * 3 // 5
    return box_w, CARD_HEIGHT - 2 * MARGIN_PX - BRAND_BAND_PX


def site_card(
    brand: Brand,
    picture: Path | None = None,
    *,
    headline: str | None = None,
    line: str | None = None,
) -> bytes:
    """The site's own card (home, gallery, credits, error pages): the brand's card picture
    (``picture`` overrides it) beside its headline, above its card line; a plain card in the
    brand's colours with the headline alone when it has no picture. ``headline`` and ``line``:
    the brand's words in another language (brand.toml's as written by default)."""
    path = picture or brand.card_picture
    if path is None:
        image = Image.new("RGB", (16, 9), _rgb(brand.colours.primary))
    else:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
    words = headline if headline is not None else brand.share.card_headline
    return encode_card(card_image(image, brand, line=line, headline=words))


def card_image(
    frame: NDArray[np.uint8] | Image.Image,
    brand: Brand,
    *,
    line: str | None = None,
    headline: str | None = None,
    scaled: NDArray[np.uint8] | None = None,
) -> Image.Image:
    """The card as an RGB image (``share_card`` before encoding). A ``headline`` (the site's own
    card) is set large beside the frame instead of the frame taking the whole width.
    ``scaled``: the frame already scaled to ``card_frame_size`` (the very pixels of the
    Lanczos scaling here: ``renderer.rescale`` redoes only the rows a caption changed)."""
    picture = frame if isinstance(frame, Image.Image) else Image.fromarray(frame)
    if picture.mode != "RGB":
        picture = picture.convert("RGB")
    text = line if line is not None else brand.share.card_line
    if headline:
        canvas, text_top = _background(brand.colours.primary), None
    else:  # the brand line drawn once per brand and line, then copied
        lined, text_top = _lined_background(brand.colours.primary, brand.colours.text, text)
        canvas = lined.copy()
    draw = ImageDraw.Draw(canvas)
    _box_w, box_h = _frame_box(bool(headline))
    size = card_frame_size(picture.width, picture.height, headline=bool(headline))
    if scaled is None:
        resized = picture.resize(size, Image.Resampling.LANCZOS)
    elif scaled.shape[:2] != (size[1], size[0]):
        raise ValueError(f"scaled is {scaled.shape[:2]}, not {(size[1], size[0])}")
    else:
        resized = Image.fromarray(scaled)
    left, top = _frame_origin(size, headline=bool(headline))
    draw.rectangle(
        (
            left - FRAME_BORDER_PX,
            top - FRAME_BORDER_PX,
            left + size[0] + FRAME_BORDER_PX - 1,
            top + size[1] + FRAME_BORDER_PX - 1,
        ),
        fill=_rgb(brand.colours.accent),
    )
    canvas.paste(resized, (left, top))
    if text_top is None or text_top <= top + size[1] + FRAME_BORDER_PX:
        # The line was not drawn yet, or it reaches the frame (never at 1200×630 and 40 px;
        # drawn over it again, the same bytes as before the background was cached).
        _draw_line(draw, text, brand.colours.text)
    if headline:
        _draw_headline(draw, headline, brand, left=left + size[0] + MARGIN_PX, box_h=box_h)
    return canvas


def _background(primary: str) -> Image.Image:
    return Image.new("RGB", (CARD_WIDTH, CARD_HEIGHT), _rgb(primary))


def _draw_line(draw: ImageDraw.ImageDraw, text: str, colour: str) -> None:
    """The brand line, centred on the baseline MARGIN_PX above the card's bottom."""
    baseline = CARD_HEIGHT - MARGIN_PX
    font = _brand_font(BRAND_FONT_PX)
    draw.text((CARD_WIDTH // 2, baseline), text, font=font, fill=_rgb(colour), anchor="ms")


@functools.lru_cache(maxsize=16)
def _lined_background(primary: str, colour: str, text: str) -> tuple[Image.Image, int]:
    """The card's background with its brand line drawn, and the top of the line's ink (a share
    card copies it: filling 1200×630 and laying the line out cost about 3 ms a render). The
    line lies in the band below the frame, so drawing it first changes no pixel."""
    canvas = _background(primary)
    draw = ImageDraw.Draw(canvas)
    _draw_line(draw, text, colour)
    font = _brand_font(BRAND_FONT_PX)
    bbox = draw.textbbox((CARD_WIDTH // 2, CARD_HEIGHT - MARGIN_PX), text, font=font, anchor="ms")
    return canvas, int(bbox[1])


def encode_card(canvas: Image.Image) -> bytes:
    """The card as a baseline JPEG with optimised Huffman tables under CARD_MAX_BYTES (quality
    lowered until it fits).

    Not progressive: a progressive file decodes to the very same pixels (the same DCT and
    quantisation, only the scans differ) and is about 4.7 % smaller, but its encode took 12 ms
    of a render against 5 ms (1200×630, measured on the demo templates); link previews are
    fetched whole by the networks' crawlers, so the scans' early preview buys nothing."""
    data = b""
    for quality in CARD_QUALITIES:
        out = io.BytesIO()
        canvas.save(out, "JPEG", quality=quality, optimize=True)
        data = out.getvalue()
        if len(data) < CARD_MAX_BYTES:
            break
    return data


def _draw_headline(
    draw: ImageDraw.ImageDraw, text: str, brand: Brand, *, left: int, box_h: int
) -> None:
    """The site card's headline (lines split at newlines), centred right of the frame."""
    font = _brand_font(HEADLINE_FONT_PX)
    words = text.splitlines()
    line_h = HEADLINE_FONT_PX + 8
    centre_x = (left + CARD_WIDTH - MARGIN_PX) // 2
    top = MARGIN_PX + (box_h - line_h * len(words)) // 2 + HEADLINE_FONT_PX
    for i, words_of_line in enumerate(words):
        position = (centre_x, top + i * line_h)
        draw.text(position, words_of_line, font=font, fill=_rgb(brand.colours.text), anchor="ms")


def _rgb(colour: str) -> Rgb:
    return parse_hex_colour(colour)


@functools.lru_cache(maxsize=4)
def _brand_font(size_px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONTS_DIR / BRAND_FONT_FILE), size_px)
