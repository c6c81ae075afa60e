"""Share cards: really 1200×630 JPEGs under 300 KB, the frame's own pixels on the brand colour,
for frames of any shape, a render carries one made from its first frame (dressed by the brand it
is handed), and the site's own card is drawn from the brand."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from loopmark.brand import Brand, demo_brand
from loopmark.renderer.card import (
    CARD_HEIGHT,
    CARD_MAX_BYTES,
    CARD_WIDTH,
    share_card,
    site_card,
)
from loopmark.renderer.colours import parse_hex_colour
from loopmark.renderer.prepare import PreparedTemplate
from loopmark.renderer.render import caption_layer, compose_frames, render
from tests.pixels import pixel


def other_brand() -> Brand:
    demo = demo_brand()
    colours = replace(demo.colours, primary="#00ff00", accent="#0000ff", text="#ff0000")
    share = replace(demo.share, card_line="Made with Other")
    return replace(demo, name="Other", colours=colours, share=share)


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
    card = open_card(share_card(frame, demo_brand()))
    # The corners are the brand's colour, the centre is the frame's.
    background = parse_hex_colour(demo_brand().colours.primary)
    assert colour_distance(pixel(card, (3, 3)), background) <= 6
    assert colour_distance(pixel(card, (1196, 626)), background) <= 6
    assert colour_distance(pixel(card, (600, 280)), (10, 200, 30)) <= 8


def test_worst_case_noise_still_fits_under_300_kb() -> None:
    # Pure noise is the hardest thing to compress: quality is lowered until it fits.
    noise = np.random.default_rng(7).integers(0, 256, (630, 1200, 3), dtype=np.uint8)
    open_card(share_card(noise, demo_brand()))


def test_brand_colours_and_line_come_from_the_brand() -> None:
    frame = np.zeros((90, 160, 3), dtype=np.uint8)
    brand = other_brand()
    card = open_card(share_card(frame, brand))
    assert colour_distance(pixel(card, (3, 3)), (0, 255, 0)) <= 6
    bottom = np.asarray(card)[CARD_HEIGHT - 80 :]
    red = (bottom[..., 0] > 200) & (bottom[..., 1] < 80) & (bottom[..., 2] < 80)
    assert red.sum() > 200  # the brand line is drawn in the brand's text colour
    plain = open_card(share_card(frame, brand, line=""))
    assert not ((np.asarray(plain)[CARD_HEIGHT - 80 :, :, 0] > 200).any())


def test_render_carries_the_card_of_its_first_frame(small: PreparedTemplate) -> None:
    brand = other_brand()
    result = render(small, "Card me", brand=brand)
    card = open_card(result.card)
    first = compose_frames(small, caption_layer(small, "Card me"))[0]
    expected = open_card(share_card(first, brand))
    difference = np.abs(np.asarray(card, dtype=int) - np.asarray(expected, dtype=int))
    assert difference.mean() < 1.0
    assert colour_distance(pixel(card, (3, 3)), (0, 255, 0)) <= 6  # the brand handed in


def test_the_site_card_is_drawn_from_the_brand() -> None:
    demo = open_card(site_card(demo_brand()))
    assert colour_distance(pixel(demo, (3, 3)), parse_hex_colour("#5b2e91")) <= 6
    # The card picture sits left of the headline, inside the accent's border.
    assert colour_distance(pixel(demo, (38, 200)), parse_hex_colour("#ff7a1a")) <= 30
    other = open_card(site_card(replace(other_brand(), card_picture=None)))
    assert colour_distance(pixel(other, (3, 3)), (0, 255, 0)) <= 6
    assert colour_distance(pixel(other, (38, 200)), (0, 0, 255)) <= 30


def _card_drawn_in_order(frame: np.ndarray, brand: Brand, line: str) -> Image.Image:
    """The card as drawn before its background was cached: canvas, border, frame, then line."""
    from PIL import ImageDraw

    from loopmark.renderer import card as card_module

    picture = Image.fromarray(frame)
    canvas = Image.new("RGB", (CARD_WIDTH, CARD_HEIGHT), parse_hex_colour(brand.colours.primary))
    draw = ImageDraw.Draw(canvas)
    margin, border = card_module.MARGIN_PX, card_module.FRAME_BORDER_PX
    box_w = CARD_WIDTH - 2 * margin
    box_h = CARD_HEIGHT - 2 * margin - card_module.BRAND_BAND_PX
    scale = min((box_w - 2 * border) / picture.width, (box_h - 2 * border) / picture.height)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    left, top = margin + (box_w - size[0]) // 2, margin + (box_h - size[1]) // 2
    outline = (left - border, top - border, left + size[0] + border - 1, top + size[1] + border - 1)
    draw.rectangle(outline, fill=parse_hex_colour(brand.colours.accent))
    canvas.paste(picture.resize(size, Image.Resampling.LANCZOS), (left, top))
    font = card_module._brand_font(card_module.BRAND_FONT_PX)
    draw.text((CARD_WIDTH // 2, CARD_HEIGHT - margin), line, font=font,
              fill=parse_hex_colour(brand.colours.text), anchor="ms")  # fmt: skip
    return canvas


@pytest.mark.parametrize("size", [(480, 270), (270, 480), (160, 90)])
def test_the_cached_brand_line_gives_the_very_bytes_of_drawing_it_last(
    size: tuple[int, int],
) -> None:
    from loopmark.renderer.card import encode_card

    frame = np.random.default_rng(5).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    for brand in (demo_brand(), other_brand()):
        for line in (brand.share.card_line, "Hecho con Loopmark — fjgqy ÄÖ", ""):
            expected = encode_card(_card_drawn_in_order(frame, brand, line))
            assert share_card(frame, brand, line=line) == expected
    # Still the same after other brands and lines went through the cache.
    assert share_card(frame, demo_brand()) == encode_card(
        _card_drawn_in_order(frame, demo_brand(), demo_brand().share.card_line)
    )


def test_a_card_given_its_frame_scaled_is_the_very_card() -> None:
    from loopmark.renderer.card import card_frame_size
    from loopmark.renderer.rescale import rescale

    frame = np.random.default_rng(11).integers(0, 256, (270, 480, 3), dtype=np.uint8)
    scaled = rescale(frame, card_frame_size(480, 270))
    assert share_card(frame, demo_brand(), scaled=scaled) == share_card(frame, demo_brand())
    with pytest.raises(ValueError, match="scaled"):
        share_card(frame, demo_brand(), scaled=scaled[:, 1:])


def test_renders_carry_the_very_card_and_thumbnail_of_their_first_frame(
    small: PreparedTemplate,
) -> None:
    # The render keeps the template's first frame scaled and redoes only what the caption box
    # reaches: the card's and thumbnail's bytes are the composed first frame's, render after
    # render.
    from loopmark.renderer.render import thumbnail_jpeg

    brand = demo_brand()
    for caption in ("Card me", "Hop on", "Card me"):
        first = compose_frames(small, caption_layer(small, caption))[0]
        result = render(small, caption, brand=brand)
        assert result.card == share_card(first, brand)
        assert result.thumbnail == thumbnail_jpeg(first)


def test_a_templates_kept_card_serves_each_brand_and_line_with_its_own_bytes(
    small: PreparedTemplate,
) -> None:
    from loopmark.renderer.render import card_jpeg

    for caption in ("Card me", "Hop on"):
        first = compose_frames(small, caption_layer(small, caption))[0]
        for brand in (demo_brand(), other_brand(), demo_brand()):
            for line in (None, "Hecho con Loopmark — fjgqy ÄÖ", ""):
                expected = share_card(first, brand, line=line)
                assert card_jpeg(small, first, brand, line=line) == expected


def test_the_card_is_a_baseline_jpeg_with_the_progressive_ones_pixels() -> None:
    # Progressive scans cost 12 ms of a render against 5: the baseline file decodes to the very
    # pixels the progressive one did (same DCT, same quantisation), for a few % more bytes.
    from loopmark.renderer.card import card_image, encode_card

    frame = np.random.default_rng(3).integers(0, 256, (270, 480, 3), dtype=np.uint8)
    canvas = card_image(frame, demo_brand())
    data = encode_card(canvas)
    assert not Image.open(io.BytesIO(data)).info.get("progressive")
    progressive = io.BytesIO()
    canvas.save(progressive, "JPEG", quality=85, optimize=True, progressive=True)
    ours = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    theirs = np.asarray(Image.open(progressive).convert("RGB"))
    assert np.array_equal(ours, theirs)
