"""Shared by the caption layout tests: a style maker, ink measurements and saved artifacts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from loopmark.renderer.caption import DEFAULT_FONT, TextStyle, fonts_dir

BOX = (440, 120)

WHITE = (255, 255, 255)

BLACK = (0, 0, 0)

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "layout"


def style(
    font: str = DEFAULT_FONT,
    *,
    size: int | None = None,
    stroke_width: int = 0,
    stroke: tuple[int, int, int] = BLACK,
    **kwargs: object,
) -> TextStyle:
    """A style; `size` pins the font size (min = max) so pixels can be compared."""
    if size is not None:
        kwargs.update(max_size=size, min_size=size)
    return TextStyle(
        font=fonts_dir() / font,
        fill=WHITE,
        stroke=stroke,
        stroke_width=stroke_width,
        **kwargs,  # type: ignore[arg-type]
    )


def alpha(image: Image.Image) -> np.ndarray:
    return np.asarray(image)[..., 3]


def ink_columns(image: Image.Image) -> np.ndarray:
    return np.nonzero(alpha(image).max(axis=0))[0]


def ink_bands(image: Image.Image) -> int:
    """Number of horizontal bands of ink separated by empty rows (lines of text)."""
    rows = alpha(image).max(axis=1) > 0
    return int(np.count_nonzero(rows[1:] & ~rows[:-1]) + rows[0])


def ink_box(image: Image.Image) -> tuple[int, int, int, int]:
    """The bounding box of the ink (left, top, right, bottom); fails when there is none."""
    box = image.getbbox()
    assert box is not None, "the layer has no ink"
    return box


def save(name: str, layer: Image.Image) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    background = Image.new("RGBA", layer.size, (70, 110, 160, 255))
    background.alpha_composite(layer)
    background.save(ARTIFACTS / name)
