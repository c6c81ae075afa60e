"""Share cards: really 1200×630 JPEGs under 300 KB, the frame's own pixels on the brand colour,
for frames of any shape, and a render carries one made from its first frame."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from loopmark.package_data import STATIC_DIR
from loopmark.renderer.card import (
    CARD_HEIGHT,
    CARD_MAX_BYTES,
    CARD_WIDTH,
    DEFAULT_BRAND,
    CardBrand,
    share_card,
)
from loopmark.renderer.colours import parse_hex_colour
from loopmark.renderer.prepare import PreparedTemplate
from loopmark.renderer.render import caption_layer, compose_frames, render

SITE_CARD = STATIC_DIR / "img" / "share-card.jpg"


def open_card(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    assert image.size == (CARD_WIDTH, CARD_HEIGHT) == (1200, 630)
    assert len(data) < CARD_MAX_BYTES == 300_000
    return image.convert("RGB")


def colour_distance(a: tuple[int, ...], b: tuple[int, int, int]) -> int:
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("size", [(480, 270), (270, 480), (300, 300), (160, 90), (1920, 1080)])
def test_card_is_1200_by_630_under_300_kb_for_any_frame_shape(size: tuple[int, int]) -> None:
    frame = np.full((size[1], size[0], 3), (10, 200, 30), dtype=np.uint8)
    card = open_card(share_card(frame))
    # The corners are the brand's colour, the centre is the frame's.
    background = parse_hex_colour(DEFAULT_BRAND.background)
    assert colour_distance(card.getpixel((3, 3)), background) <= 6
    assert colour_distance(card.getpixel((1196, 626)), background) <= 6
    assert colour_distance(card.getpixel((600, 280)), (10, 200, 30)) <= 8


def test_worst_case_noise_still_fits_under_300_kb() -> None:
    # Pure noise is the hardest thing to compress: quality is lowered until it fits.
    noise = np.random.default_rng(7).integers(0, 256, (630, 1200, 3), dtype=np.uint8)
    open_card(share_card(noise))


def test_brand_colours_and_line_come_from_the_brand() -> None:
    frame = np.zeros((90, 160, 3), dtype=np.uint8)
    brand = CardBrand(name="Other", background="#00ff00", accent="#0000ff", text="#ff0000")
    card = open_card(share_card(frame, brand))
    assert colour_distance(card.getpixel((3, 3)), (0, 255, 0)) <= 6
    bottom = np.asarray(card)[CARD_HEIGHT - 80 :]
    red = (bottom[..., 0] > 200) & (bottom[..., 1] < 80) & (bottom[..., 2] < 80)
    assert red.sum() > 200  # the brand line is drawn in the brand's text colour
    plain = open_card(share_card(frame, brand, line=""))
    assert not ((np.asarray(plain)[CARD_HEIGHT - 80 :, :, 0] > 200).any())


def test_render_carries_the_card_of_its_first_frame(small: PreparedTemplate) -> None:
    result = render(small, "Card me")
    card = open_card(result.card)
    first = compose_frames(small, caption_layer(small, "Card me"))[0]
    expected = open_card(share_card(first))
    difference = np.abs(np.asarray(card, dtype=int) - np.asarray(expected, dtype=int))
    assert difference.mean() < 1.0


def test_the_site_card_is_a_real_1200_by_630_jpeg() -> None:
    open_card(SITE_CARD.read_bytes())
