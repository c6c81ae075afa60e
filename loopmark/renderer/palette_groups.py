"""Palettes per span of the clip's time: one palette for every frame, or the clip's palette
for the first span and one of its own for each later span (the GIF's global colour table, then a
local colour table on every frame of a later span), chosen at preparation by SSIM and bytes.

One 255-colour palette for every frame is the limit on *Head scratch* (gifski's per-frame
palettes score 0.9701 on its last frame against our 0.9615). Where the palette changes, a pixel
keeps the colour shown while that colour is within the stabilise distance of the truth, or no
worse than what would be drawn (``keep_across``: displayed colours compared, never indices), so
a later palette draws what moves over what the first drew, and the display holds the colours of
both, as gifski's accumulate. It costs bytes: 768 a frame for the local tables, and the pixels
redrawn at each change. So preparation makes both, each stabilised and GIF-encoded as a render's
template frames would be, scores them by SSIM, and keeps the spans only when their gain is worth
their bytes (``MULTI_PALETTE_SSIM_PER_BYTE``); what it measured goes into the manifest.
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
    REFINE_SAMPLE_PIXELS,
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
# The fewest frames a template needs for the trial to run at all (shorter: one palette, untried).
MIN_TRIAL_FRAMES = min(PALETTE_GROUP_CANDIDATES) * MIN_GROUP_FRAMES
# The SSIM a split must gain for each unit of relative byte growth (0.0003 a 1 %: within what
# the stabiliser trades on the demo templates, 0.00013 a 1 % on Head scratch from distance 4 to 8,
# 0.0005–0.0007 on Wake up and Big stretch), and at least this much net of that, or the template
# keeps one palette and its bytes. Measured, template frames alone, two palettes against one:
# Head scratch at distance 7 +0.0019 for +2.9 % bytes (two); Wake up +0.0003 for +0.8 % and
# Big stretch −0.0003 for +1.1 % (one).
MULTI_PALETTE_SSIM_PER_BYTE = 0.03
MULTI_PALETTE_MIN_NET_GAIN = 0.0005
SPAN_SAMPLE_MIN_PIXELS = 100_000
_SCORED_FRAMES = 6  # frames spread over those after the first run, whose SSIM decides
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


def clip_palette(
    frames: NDArray[np.uint8],
    reserved: list[Rgb],
    fps: int,
    *,
    pixels: int = REFINE_SAMPLE_PIXELS,
) -> NDArray[np.uint8]:
    """One palette for ``frames``: FFmpeg's median cut over a weighted sample of about
    ``pixels`` pixels, refined by k-means, with the caption's ``reserved`` colours and the
    transparency slot."""
    sample = palette_sample(frames, pixels)
    del frames
    clip_colours = refine_palette(
        sample.image,
        generate_palette(sample.image, colours=255 - len(reserved), fps=fps),
        fixed=reserved,
        weights=sample.weights,
        sample=pixels,
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
    bytes: int = 0  # measured only when there is a choice
    ssim: float = 0.0  # mean SSIM of the scored frames (those after the first run)
    share: float = 1.0  # the share of the clip's frames those stand for

    def summary(self) -> dict[str, Any]:
        summary: dict[str, Any] = {"palettes": len(self.palettes), "distance": self.distance}
        if self.bytes:
            summary.update(ssim=round(self.ssim, 5), share=round(self.share, 3), bytes=self.bytes)
        return summary


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
    and scored by SSIM on ``_SCORED_FRAMES`` frames spread over those after the first run (the
    first is the same in every option).
    """
    count = len(frames)
    single = _single(frames, distance, reserved, fps)
    options = [single]
    for groups in candidates:
        if groups >= 2 and count >= groups * MIN_GROUP_FRAMES:
            ids = frame_palettes(count, groups, loop)
            options.append(_spans(frames, ids, single, reserved, fps))
    if len(options) > 1:
        # Every option shows the first palette's first run as one palette does (the same
        # indices): only the frames after it are scored, and their gain counts for their share.
        start = min(palette_runs(o.frame_palettes)[0][0].stop for o in options[1:])
        spread = np.linspace(start, count - 1, min(count - start, _SCORED_FRAMES)).round()
        scored = [int(i) for i in np.unique(spread)]
        for option in options:
            option.bytes = _gif_bytes(option)
            option.share = (count - start) / count
        # One reference frame at a time (each holds ~6 MB of window statistics at 480 px).
        shown = [displayed(o.indices, o.palettes, o.frame_palettes, scored) for o in options]
        for i in scored:
            reference = Reference(frames[i])
            for option, frames_shown in zip(options, shown, strict=True):
                option.ssim += reference.ssim(next(frames_shown)) / len(scored)
    best = max(options, key=lambda option: _net_gain(option, single))
    if _net_gain(best, single) < MULTI_PALETTE_MIN_NET_GAIN:
        best = single
    record = {
        "palettes": len(best.palettes),
        "tried": [option.summary() for option in options],
    }
    return PaletteChoice(
        best.palettes,
        tuple(int(p) for p in best.frame_palettes),
        best.indices,
        best.distance,
        record,
    )


@dataclass(frozen=True)
class PaletteTrial:
    """What preparation measured of a palette per span (the manifest's ``palette_choice``),
    as the admin's editor shows it: the palettes kept, and the best split's SSIM and bytes
    against one palette (template frames alone, the frames after the first run); both None when
    the frames were too few to try it (``MIN_TRIAL_FRAMES``)."""

    palettes: int
    ssim_change: float | None = None
    bytes_change: float | None = None  # relative: 0.032 is 3.2 % more bytes

    @classmethod
    def of_record(cls, record: object) -> PaletteTrial | None:
        """The trial a manifest's ``palette_choice`` records (``choose_palettes``' record);
        None for anything else (an older or altered manifest)."""
        if not isinstance(record, dict):
            return None
        try:
            kept = int(record["palettes"])
            tried = [dict(option) for option in record["tried"]]
            single, *splits = tried
            if not splits or "ssim" not in single:
                return cls(kept)
            # The one kept when spans won; else the one that came closest.
            best = max(splits, key=lambda o: (int(o["palettes"]) == kept, float(o["ssim"])))
            return cls(
                kept,
                ssim_change=float(best["ssim"]) - float(single["ssim"]),
                bytes_change=int(best["bytes"]) / int(single["bytes"]) - 1,
            )
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            return None


def _net_gain(option: _Option, single: _Option) -> float:
    """SSIM gained over one palette, less what its extra bytes are worth."""
    if option is single:
        return 0.0
    growth = option.bytes / single.bytes - 1
    gain = (option.ssim - single.ssim) * option.share
    return gain - MULTI_PALETTE_SSIM_PER_BYTE * growth


def _single(
    frames: NDArray[np.uint8], distance: float | None, reserved: list[Rgb], fps: int
) -> _Option:
    """One palette for the clip, every frame mapped onto it and stabilised (prepare 8's)."""
    palette = clip_palette(frames, reserved, fps)
    indices = nearest_indices(frames, palette)
    if distance is None:
        distance = tune_stabilise_distance(frames, indices, palette)
    stabilise(indices, frames, palette, distance=distance)
    return _Option(palette[None], np.zeros(len(frames), dtype=np.intp), indices, distance)


def _spans(
    frames: NDArray[np.uint8],
    ids: NDArray[np.intp],
    single: _Option,
    reserved: list[Rgb],
    fps: int,
) -> _Option:
    """A palette per id in ``ids``: the first is the clip's one (its runs take ``single``'s
    indices), each other from its own frames, its runs stabilised on it from their first frame;
    then pixels are held across palette changes (``keep_across``)."""
    others = []
    for g in range(1, int(ids.max()) + 1):
        chosen = np.flatnonzero(ids == g)
        # A sample the span's share of the clip's: the span's own frames are fewer.
        pixels = max(SPAN_SAMPLE_MIN_PIXELS, REFINE_SAMPLE_PIXELS * len(chosen) // len(ids))
        others.append(clip_palette(_spread(frames, chosen), reserved, fps, pixels=pixels))
    palettes = np.stack([single.palettes[0], *others])
    runs = palette_runs(ids)
    indices = np.empty(frames.shape[:-1], dtype=np.uint8)
    for s, g in runs:
        if g == 0:  # each of single's indices is its colour's nearest or within the distance
            indices[s] = single.indices[s]
            continue
        indices[s] = nearest_indices(frames[s], palettes[g])
        stabilise(indices[s], frames[s], palettes[g], distance=single.distance)
    keep_across(indices, frames, palettes, ids, distance=single.distance)
    return _Option(palettes, ids, indices, single.distance)


def _gif_bytes(option: _Option) -> int:
    delays = [_DECISION_DELAY_CS] * len(option.indices)
    if len(option.palettes) == 1:
        return len(encode_gif(option.indices, option.palettes[0], delays))
    palettes, ids = option.palettes, option.frame_palettes
    return len(encode_gif(option.indices, palettes[0], delays, palettes=palettes, groups=ids))


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
    colours = palettes.astype(np.int32)
    # The pixels showing an older frame's colour, and that colour: within a run only they are
    # checked; where the palette changes, every pixel is.
    held_at = np.empty(0, dtype=np.intp)
    held = np.empty((0, 3), dtype=np.int32)
    for f in range(1, count):
        if ids[f] != ids[f - 1]:
            candidates = colours[ids[f - 1]][flat[f - 1]]
            candidates[held_at] = held
            check = np.arange(flat.shape[1])
        else:
            candidates, check = held, held_at
        wanted = truth[f][check].astype(np.int32)  # a frame at a time: bounded memory
        error = ((candidates - wanted) ** 2).sum(axis=1)
        # Held while within the distance, or no worse than what would be drawn instead.
        drawn_error = ((colours[ids[f]][flat[f][check]] - wanted) ** 2).sum(axis=1)
        hold = (error <= limit) | (error <= drawn_error)
        held_at, held = check[hold], candidates[hold]
        flat[f][held_at] = TRANSPARENT_INDEX
    return indices


def displayed(
    indices: NDArray[np.uint8],
    palettes: NDArray[np.uint8],
    ids: NDArray[np.intp],
    at: Sequence[int] | None = None,
) -> Iterator[NDArray[np.uint8]]:
    """The frames (those ``at``, in order; every one by default) as a GIF of ``indices`` shows
    them (``TRANSPARENT_INDEX``: what was shown), kept up to date pixel by pixel where the
    indices change (all of them where the palette does)."""
    wanted = set(range(len(indices)) if at is None else at)
    count = len(indices)
    flat = indices.reshape(count, -1)
    shown = palettes[ids[0]][flat[0]]
    for i in range(count):
        if i and ids[i] != ids[i - 1]:
            drawn = np.flatnonzero(flat[i] != TRANSPARENT_INDEX)
        elif i:
            drawn = np.flatnonzero((flat[i] != flat[i - 1]) & (flat[i] != TRANSPARENT_INDEX))
        if i:
            shown[drawn] = palettes[ids[i]][flat[i][drawn]]
        if i in wanted:
            yield shown.reshape(*indices.shape[1:], 3).copy()


def _spread(frames: NDArray[np.uint8], chosen: NDArray[np.intp]) -> NDArray[np.uint8]:
    """``frames[chosen]``, at most as many as the palette's sample is drawn from, spread evenly
    (a copy of those alone; ``palette_sample`` would pick the same)."""
    if len(chosen) == len(frames):
        return frames
    picked = np.linspace(0, len(chosen) - 1, min(len(chosen), SAMPLE_FRAMES)).round()
    subset: NDArray[np.uint8] = frames[chosen[np.unique(picked).astype(np.intp)]]
    return subset
