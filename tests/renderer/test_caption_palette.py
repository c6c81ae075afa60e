"""Palette room for captions: with the emoji colours kept, 🔥's yellow core keeps its colour on a
clip that has no such yellow (it came out pale green), and the clip loses little."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from loopmark.renderer.caption_palette import EMOJI_COLOURS, caption_reserved_colours
from loopmark.renderer.prepare import PreparedTemplate
from loopmark.renderer.quantize import build_lut, build_palette, lookup, refine_palette
from loopmark.renderer.render import caption_layer
from loopmark.renderer.video import generate_palette

FIRE = "🔥🔥"


def palette_with(
    prepared: PreparedTemplate, reserved: list[tuple[int, int, int]]
) -> NDArray[np.uint8]:
    """The template's palette as prepare.py builds it, with ``reserved`` kept."""
    frames = np.asarray(prepared.frames)
    colours = generate_palette(frames, colours=255 - len(reserved), fps=prepared.fps)
    return build_palette(refine_palette(frames, colours), reserved)


def core_error(palette: NDArray[np.uint8], pixels: NDArray[np.uint8]) -> float:
    mapped = palette[lookup(build_lut(palette), pixels)].astype(int)
    return float(np.sqrt(((mapped - pixels.astype(int)) ** 2).sum(-1)).mean())


def test_emoji_colours_keep_the_fires_yellow_core(small: PreparedTemplate) -> None:
    layer = caption_layer(small, FIRE)
    rgb = layer[..., :3][layer[..., 3] > 250]
    core = rgb[(rgb[:, 0] > 230) & (rgb[:, 1] > 180) & (rgb[:, 2] < 120)]  # the yellow flame
    assert len(core) > 10
    style = small.template.style
    before = core_error(palette_with(small, [style.fill, style.stroke]), core)
    after = core_error(palette_with(small, caption_reserved_colours(style)), core)
    # On this 160-pixel clip the flame is small and its core lighter: 50 → 26 RGB units here
    # (on the 480-pixel Wake up, 62 → 9: caption_palette's docstring).
    assert after < before / 1.5 and before > 35, (before, after)


def test_reserved_colours_are_fill_stroke_then_emoji_once(small: PreparedTemplate) -> None:
    style = small.template.style
    reserved = caption_reserved_colours(style)
    assert reserved[:2] == [style.fill, style.stroke]
    assert set(EMOJI_COLOURS) <= set(reserved) and len(set(reserved)) == len(reserved)
    assert len(reserved) <= 2 + len(EMOJI_COLOURS) < 32  # the clip keeps 220+ entries
