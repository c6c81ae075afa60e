"""Palette room for captions: with the emoji colours kept, 🔥's yellow core keeps its colour on a
clip that has no such yellow (it came out pale green), and the clip loses little."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from loopmark.renderer.caption_palette import (
    EMOJI_COLOURS,
    caption_reserved_colours,
    may_draw_emoji,
)
from loopmark.renderer.prepare import PreparedTemplate, prepare_template
from loopmark.renderer.quantize import (
    build_lut,
    build_palette,
    lookup,
    palette_sample,
    refine_palette,
)
from loopmark.renderer.render import caption_layer, render
from loopmark.renderer.video import generate_palette

FIRE = "🔥🔥"


def palette_with(
    prepared: PreparedTemplate, reserved: list[tuple[int, int, int]]
) -> NDArray[np.uint8]:
    """The template's palette as prepare.py builds it, with ``reserved`` kept."""
    sample = palette_sample(np.asarray(prepared.frames))
    colours = generate_palette(sample.image, colours=255 - len(reserved), fps=prepared.fps)
    clip_colours = refine_palette(sample.image, colours, fixed=reserved, weights=sample.weights)
    return build_palette(clip_colours, reserved)


def flame_core(layer: NDArray[np.uint8]) -> NDArray[np.bool_]:
    """The opaque yellow of 🔥 in a caption layer (Noto draws it about (248, 202, 40))."""
    r, g, b, a = (layer[..., i].astype(int) for i in range(4))
    core: NDArray[np.bool_] = (a == 255) & (r > 230) & (g > 180) & (b < 120)
    return core


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


def test_a_rendered_fire_keeps_its_yellow_core(small: PreparedTemplate) -> None:
    """End to end: preparation reserves the emoji colours, so the GIF's flame core is yellow
    (without them, a pale green: the clip's nearest entry)."""
    layer = caption_layer(small, FIRE)
    core = flame_core(layer)
    assert core.sum() > 10
    with Image.open(io.BytesIO(render(small, FIRE).gif)) as gif:
        first = np.asarray(gif.convert("RGB"))
    box = small.box
    shown = first[box.y : box.y + box.h, box.x : box.x + box.w][core].astype(int)
    truth = layer[..., :3][core].astype(int)
    error = float(np.sqrt(((shown - truth) ** 2).sum(-1)).mean())
    # Yellow, not green: red stays above green and well above blue, and the colour is close.
    assert error < 35, error  # measured on this clip: 52 without the emoji colours, 26 with
    assert (shown[:, 0] >= shown[:, 1]).all() and (shown[:, 1] > shown[:, 2] + 80).all(), shown


def test_only_presets_without_emoji_draw_none() -> None:
    assert may_draw_emoji("free", [])  # a visitor may type any
    assert not may_draw_emoji("presets", ["Plot twist", "Hmm… one more cup?", "Привет 你好"])
    for preset in ("Hop 🐰", "Number 1\ufe0f\u20e3", "Go 🇩🇪", "Snow ❄\ufe0f"):
        assert may_draw_emoji("presets", ["Plot twist", preset]), preset


def test_a_template_without_emoji_gives_their_entries_to_the_clip(
    small: PreparedTemplate, tmp_path: Path
) -> None:
    """A presets-only template whose captions hold no emoji keeps fill and stroke alone: the
    clip takes the 16 entries (another version, so another prepared folder)."""
    style = small.template.style
    free = small.template
    presets = dataclasses.replace(free, caption_mode="presets", captions=("Plot twist",))
    assert free.draws_emoji and not presets.draws_emoji
    assert presets.version != free.version
    reserved = caption_reserved_colours(style)
    assert [tuple(c) for c in small.palette[255 - len(reserved) : 255]] == reserved
    plain = prepare_template(presets, tmp_path / "prepared")
    assert [tuple(c) for c in plain.palette[253:255]] == [style.fill, style.stroke]
    clip_entries = {tuple(int(v) for v in c) for c in plain.palette[:253]}
    assert len(clip_entries) > 255 - len(reserved)  # more clip colours than the free template's
    emoji = dataclasses.replace(presets, captions=("Plot twist 🔥",))
    assert emoji.draws_emoji and emoji.version == free.version  # prepared as the free one
