"""Kept rescaling: a frame that differs from a kept one only in a band of rows is scaled to the
very bytes of Pillow's Lanczos resize, by redoing only what the band reaches."""

from __future__ import annotations

import numpy as np
import pytest

from loopmark.renderer.card import card_frame_size
from loopmark.renderer.rescale import KeptRescale, rescale


@pytest.mark.parametrize(
    ("shape", "rows"),
    [
        ((480, 270), (180, 258)),  # the demo templates' geometry and caption box
        ((270, 480), (300, 400)),
        ((300, 300), (0, 60)),
        ((160, 90), (60, 90)),
        ((1920, 1080), (700, 900)),
        ((480, 270), (0, 270)),  # every row changed: the whole frame is scaled
        ((481, 271), (100, 150)),  # no band lines up: the whole frame is scaled down
    ],
)
@pytest.mark.parametrize("target", ["card", "thumbnail", "down"])
def test_kept_rescale_gives_pillows_very_bytes(
    shape: tuple[int, int], rows: tuple[int, int], target: str
) -> None:
    width, height = shape
    size = {
        "card": card_frame_size(width, height),
        "thumbnail": (320, max(1, round(height * 320 / width))),
        "down": (max(1, width // 3), max(1, height // 3)),
    }[target]
    rng = np.random.default_rng(width + height)
    base = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    kept = KeptRescale(base, size, slice(*rows))
    assert np.array_equal(kept(base), rescale(base, size))
    for _ in range(2):
        frame = base.copy()
        frame[rows[0] : rows[1]] = rng.integers(0, 256, frame[rows[0] : rows[1]].shape, np.uint8)
        assert np.array_equal(kept(frame), rescale(frame, size))


def test_the_band_is_used_where_it_lines_up() -> None:
    # 270 rows to 468 (the card at 480×270): a period of 15 rows in, 26 out; the caption box's
    # rows reach the bottom 182 output rows only, which are all that is scaled down again.
    kept = KeptRescale(np.zeros((270, 480, 3), np.uint8), (832, 468), slice(180, 258))
    assert kept.band == (286, 468, 165, 270)
    assert KeptRescale(np.zeros((271, 481, 3), np.uint8), (831, 468), slice(100, 150)).band is None
