"""Palettes per group of consecutive frames: one palette for the whole clip, or one for each of
a few groups (the GIF's global colour table for the first, a local colour table on every frame
of the others), chosen at preparation by measured SSIM and bytes.

One 255-colour palette for every frame is the limit on a clip whose colours drift (*Head
scratch*: gifski's per-frame palettes score 0.9701 on its last frame against our 0.9615). A
palette per group costs bytes: a local colour table (768 bytes) on every frame of a later group,
and the frame where the palette changes is stored whole where its displayed colours change (the
encoder compares displayed RGB there, not indices). So preparation measures both, each
stabilised as a render is, and keeps the groups only when their SSIM gain is worth their bytes
(``MULTI_PALETTE_SSIM_PER_BYTE``); the figures are written into the prepared manifest.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from loopmark.renderer.colours import Rgb
from loopmark.renderer.gif import encode_gif
from loopmark.renderer.quality import Reference
from loopmark.renderer.quantize import (
    SAMPLE_FRAMES,
    TRANSPARENT_INDEX,
    build_palette,
    nearest_indices,
    palette_sample,
    refine_palette,
    stabilise,
    tune_stabilise_distance,
)
from loopmark.renderer.video import generate_palette

# Group counts tried besides one palette. A group needs frames enough to pay for its tables.
PALETTE_GROUP_CANDIDATES = (2,)
MIN_GROUP_FRAMES = 12
# The SSIM a split must gain for each unit of relative byte growth (0.0005 a 1 %: about what the
# stabiliser trades, bytes −11 % to −22 % for −0.003 to −0.008 SSIM), and at least this much net
# of that, or the template keeps one palette and its bytes.
MULTI_PALETTE_SSIM_PER_BYTE = 0.05
MULTI_PALETTE_MIN_NET_GAIN = 0.001
# Spans are given palettes of their own only when they share at most this much of the one
# palette's use (the intersection of their entries' histograms): measured on Head scratch, a
# boomerang whose spans show the same scene, two palettes gained +0.0008 SSIM for +12.6 % bytes
# and cost 1.3 s of CPU.
MULTI_PALETTE_MAX_OVERLAP = 0.75
_SCORED_FRAMES = 8  # frames spread over the clip whose SSIM decides
_DECISION_DELAY_CS = 10  # delays do not change the bytes of a frame's data


def frame_palettes(count: int, groups: int, loop: str = "forward") -> NDArray[np.intp]:
    """Each frame's palette when the clip's time is cut in ``groups`` equal spans: by the
    source frame it shows, so a boomerang's way back takes its way out's palettes (its first
    and last frames share the first; a split of its frames in halves would give two palettes of
    the same colours)."""
    position = np.arange(count)
    span = count
    if loop == "boomerang" and count > 2:
        span = count // 2 + 1  # frames out, the turning frame included: n = 2·span − 2
        position = np.minimum(position, 2 * span - 2 - position)
    palettes: NDArray[np.intp] = np.minimum(position * groups // span, groups - 1).astype(np.intp)
    return palettes


def palette_runs(palettes: Sequence[int] | NDArray[np.intp]) -> list[tuple[slice, int]]:
    """The runs of consecutive frames on one palette: (frames, palette) each."""
    ids = [int(p) for p in palettes]
    runs: list[tuple[slice, int]] = []
    start = 0
    for i in range(1, len(ids) + 1):
        if i == len(ids) or ids[i] != ids[start]:
            runs.append((slice(start, i), ids[start]))
            start = i
    return runs


def clip_palette(frames: NDArray[np.uint8], reserved: list[Rgb], fps: int) -> NDArray[np.uint8]:
    """One palette for ``frames``: FFmpeg's median cut over a weighted sample, refined by
    k-means, with the caption's ``reserved`` colours and the transparency slot."""
    sample = palette_sample(frames)
    del frames
    clip_colours = refine_palette(
        sample.image,
        generate_palette(sample.image, colours=255 - len(reserved), fps=fps),
        fixed=reserved,
        weights=sample.weights,
    )
    return build_palette(clip_colours, reserved)


@dataclass(frozen=True)
class PaletteChoice:
    palettes: NDArray[np.uint8]  # (palettes, 256, 3)
    frame_palettes: tuple[int, ...]  # each frame's palette
    indices: NDArray[np.uint8]  # (n, h, w) stabilised, each frame on its palette
    distance: float  # the stabilise distance the indices were made with
    record: dict[str, Any]  # what was measured, for the manifest


@dataclass
class _Option:
    palettes: NDArray[np.uint8]
    frame_palettes: NDArray[np.intp]
    indices: NDArray[np.uint8]
    distance: float
    bytes: int
    ssim: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "palettes": len(self.palettes),
            "ssim": round(self.ssim, 5),
            "bytes": self.bytes,
            "distance": self.distance,
        }


def choose_palettes(
    frames: NDArray[np.uint8],
    reserved: list[Rgb],
    fps: int,
    *,
    distance: float | None,
    loop: str = "forward",
    candidates: Sequence[int] = PALETTE_GROUP_CANDIDATES,
) -> PaletteChoice:
    """One palette, or a palette per span of the clip's time where that measures better per
    byte (``_net_gain``).

    ``distance``: the stabilise distance (template.toml's), or None to tune it per option.
    Each option's frames are stabilised and GIF-encoded as a render's would be (template alone)
    and scored by SSIM on ``_SCORED_FRAMES`` frames spread over the clip.
    """
    count = len(frames)
    single = _option(frames, np.zeros(count, dtype=np.intp), distance, reserved, fps)
    options = [single]
    overlaps = {}
    for groups in candidates:
        if groups < 2 or count < groups * MIN_GROUP_FRAMES:
            continue
        ids = frame_palettes(count, groups, loop)
        # Where the spans use the one palette's entries alike, their own palettes would hold
        # the same colours: another palette is built only where they use it differently.
        overlaps[groups] = round(_usage_overlap(single.indices, ids, groups), 4)
        if overlaps[groups] <= MULTI_PALETTE_MAX_OVERLAP:
            options.append(_option(frames, ids, distance, reserved, fps))
    spread = np.linspace(0, count - 1, min(count, _SCORED_FRAMES)).round()
    scored = [int(i) for i in np.unique(spread)]
    if len(options) > 1:
        # One reference frame at a time (each holds ~6 MB of window statistics at 480 px).
        shown = [displayed(o.indices, o.palettes, o.frame_palettes) for o in options]
        for i in range(count):
            rgbs = [next(frames_shown) for frames_shown in shown]
            if i in scored:
                reference = Reference(frames[i])
                for option, rgb in zip(options, rgbs, strict=True):
                    option.ssim += reference.ssim(rgb) / len(scored)
    single = options[0]
    best = max(options, key=lambda option: _net_gain(option, single))
    if best is not single and _net_gain(best, single) < MULTI_PALETTE_MIN_NET_GAIN:
        best = single
    record = {
        "palettes": len(best.palettes),
        "usage_overlap": overlaps,
        "tried": [option.summary() for option in options],
    }
    return PaletteChoice(
        best.palettes,
        tuple(int(p) for p in best.frame_palettes),
        best.indices,
        best.distance,
        record,
    )


def _usage_overlap(indices: NDArray[np.uint8], ids: NDArray[np.intp], groups: int) -> float:
    """How alike the spans use one palette: the smallest intersection, over the spans, of a
    span's entry histogram with the rest of the clip's (1: the same entries as often)."""
    shares = [
        np.bincount(indices[ids == g].reshape(-1), minlength=256) / indices[ids == g].size
        for g in range(groups)
    ]
    rest = [np.mean([h for k, h in enumerate(shares) if k != g], axis=0) for g in range(groups)]
    return float(min(np.minimum(shares[g], rest[g]).sum() for g in range(groups)))


def _net_gain(option: _Option, single: _Option) -> float:
    """SSIM gained over one palette, less what its extra bytes are worth."""
    growth = option.bytes / single.bytes - 1
    return option.ssim - single.ssim - MULTI_PALETTE_SSIM_PER_BYTE * growth


def _option(
    frames: NDArray[np.uint8],
    ids: NDArray[np.intp],
    distance: float | None,
    reserved: list[Rgb],
    fps: int,
) -> _Option:
    """The frames on a palette per id in ``ids`` (each from its frames), stabilised run by
    run, and the bytes of their GIF."""
    palettes = np.stack(
        [clip_palette(_spread(frames, np.flatnonzero(ids == g)), reserved, fps) for g in
         range(int(ids.max()) + 1)]
    )  # fmt: skip
    runs = palette_runs(ids)
    indices = np.empty(frames.shape[:-1], dtype=np.uint8)
    for s, g in runs:
        indices[s] = nearest_indices(frames[s], palettes[g])
    if distance is None:  # tuned on the first run's frames, as one palette's on the clip's
        first, g = runs[0]
        distance = tune_stabilise_distance(frames[first], indices[first], palettes[g])
    for s, g in runs:
        stabilise(indices[s], frames[s], palettes[g], distance=distance)
    if len(runs) > 1:
        keep_across(indices, frames, palettes, ids, distance=distance)
    delays = [_DECISION_DELAY_CS] * len(frames)
    if len(palettes) == 1:
        encoded = encode_gif(indices, palettes[0], delays)
    else:
        encoded = encode_gif(indices, palettes[0], delays, palettes=palettes, groups=ids)
    return _Option(palettes, ids, indices, distance, len(encoded))


def keep_across(
    indices: NDArray[np.uint8],
    frames: NDArray[np.uint8],
    palettes: NDArray[np.uint8],
    ids: NDArray[np.intp],
    *,
    distance: float,
) -> NDArray[np.uint8]:
    """The stabiliser across palette changes (in place, after each run was stabilised on its
    own palette): where the palette changes, a pixel whose displayed colour (the previous
    palette's, compared as RGB, never as an index) is within ``distance`` of the truth keeps it,
    written as ``TRANSPARENT_INDEX`` (the GIF's "leave what is shown"), frame after frame until
    the truth drifts away from it; it is then drawn with its run's index.

    So a later palette draws what changed, over what an earlier one drew, as gifski's palettes
    accumulate colours; the encoder of such indices tracks the displayed colours
    (``gif.encode_gif`` with ``palettes``).
    """
    limit = distance * distance
    count = len(indices)
    flat = indices.reshape(count, -1)
    truth = frames.reshape(count, -1, 3)
    shown = palettes[ids[0]][flat[0]].astype(np.int32)
    kept = np.zeros(flat.shape[1], dtype=bool)  # pixels showing an older frame's colour
    for f in range(1, count):
        check = np.arange(flat.shape[1]) if ids[f] != ids[f - 1] else np.flatnonzero(kept)
        error = ((shown[check] - truth[f][check]) ** 2).sum(axis=1)
        hold = check[error <= limit]
        kept[:] = False
        kept[hold] = True
        flat[f][hold] = TRANSPARENT_INDEX
        drawn = np.flatnonzero(~kept)
        shown[drawn] = palettes[ids[f]][flat[f][drawn]]
    return indices


def displayed(
    indices: NDArray[np.uint8], palettes: NDArray[np.uint8], ids: NDArray[np.intp]
) -> Iterator[NDArray[np.uint8]]:
    """The frames as a GIF of ``indices`` shows them (``TRANSPARENT_INDEX``: what was shown)."""
    shown: NDArray[np.uint8] | None = None
    for i in range(len(indices)):
        rgb = palettes[ids[i]][indices[i]]
        if shown is not None:
            held = indices[i] == TRANSPARENT_INDEX
            rgb[held] = shown[held]
        shown = rgb
        yield rgb


def _spread(frames: NDArray[np.uint8], chosen: NDArray[np.intp]) -> NDArray[np.uint8]:
    """``frames[chosen]``, at most as many as the palette's sample is drawn from, spread evenly
    (a copy of those alone; ``palette_sample`` would pick the same)."""
    if len(chosen) == len(frames):
        return frames
    picked = np.linspace(0, len(chosen) - 1, min(len(chosen), SAMPLE_FRAMES)).round()
    subset: NDArray[np.uint8] = frames[chosen[np.unique(picked).astype(np.intp)]]
    return subset
