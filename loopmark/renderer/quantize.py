"""Palette work in NumPy: nearest-colour look-up for caption pixels and temporal stabilisation.

The per-template palette has 256 entries: the clip's colours, the caption's fill and stroke, and
one slot kept for GIF transparency (``TRANSPARENT_INDEX``), which no pixel ever uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from loopmark.renderer.colours import Rgb
from loopmark.renderer.quality import Reference, error_weights

TRANSPARENT_INDEX = 255
LUT_BITS = 6  # 64 levels a channel: 262,144 entries, 256 KiB; error at most 2 levels a channel
_LUT_SHIFT = 8 - LUT_BITS
# A pixel keeps last frame's palette index while that colour is this close (RGB distance) to its
# true colour. The distance is chosen per template at preparation (``tune_stabilise_distance``):
# the largest candidate whose frames keep SSIM ≥ the floor against the unquantised ones. Measured
# on the demo templates (template frames alone, no caption), from 6 to 10: bytes −11 % on Big
# stretch for −0.0076 SSIM, −7 % on Wake up for −0.0036, −22 % on Head scratch for −0.0031.
STABILISE_DISTANCE = 6.0  # the fallback when no candidate keeps the floor
STABILISE_CANDIDATES = (6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 14.0)
# gifski 1.7.1 scores 0.945–0.966 on the demo templates with a caption; a caption adds about
# 0.004 to ours (its pixels are nearly exact), so a template-only floor of 0.9525 keeps us at or
# above gifski where our palette allows it (bench/results.md has the side-by-side figures).
STABILISE_SSIM_FLOOR = 0.9525
_TUNE_FRAMES = 16  # stabilised from the first frame; the effect settles within a few frames
_TUNE_SCORED = (3, 7, 11, 15)  # the frames whose SSIM is measured
# Lloyd passes after FFmpeg's median cut (stopping early once no colour changes entry). 8 → 32,
# measured on Head scratch with the emoji colours reserved: SSIM 0.9568 → 0.9580, bytes −0.7 %.
REFINE_ITERATIONS = 32
REFINE_SAMPLE_PIXELS = 300_000
# Colours matched at once. 256 × 255 entries × 4 is under OpenBLAS's threshold for splitting a
# product over threads (M·N·K ≤ 262,144): a server process is not pinned to one core, and there
# 1,024-colour blocks cost 10× the CPU (0.25 s against 0.023 s for 150,000 colours, measured on
# two busy cores) in threads waking and waiting; pinned or not, 256 costs the same as 1,024.
_NEAREST_BLOCK = 256
_NEAREST_FRAMES = 8  # frames matched together: bounds preparation memory
SAMPLE_FRAMES = 16  # frames the palette's pixel sample is drawn from


class PaletteSample(NamedTuple):
    """The pixels the palette is built from, as one image (1, rows, width, 3) for FFmpeg's
    palettegen (or the frames themselves when few), and each pixel's SSIM weight (flat)."""

    image: NDArray[np.uint8]
    weights: NDArray[np.float32]


def palette_sample(frames: NDArray[np.uint8], pixels: int = REFINE_SAMPLE_PIXELS) -> PaletteSample:
    """A fixed-seed sample of about ``pixels`` pixels, drawn with replacement from at most
    ``SAMPLE_FRAMES`` frames spread evenly over the clip; all their pixels when they hold no
    more than that. Each pixel carries its SSIM error weight (``quality.error_weights``).

    The palette is built from it: FFmpeg's palettegen over every pixel was the largest part of
    a preparation (0.55–1.4 s of CPU at 480 px, hashing millions of pixels), over this sample
    0.12–0.24 s. Drawing from 16 frames rather than all of them lets the weights be computed
    for those frames alone (about 5 ms a frame); neighbouring frames of a clip share colours
    (a boomerang's second half repeats its first).
    """
    count, height, width, _ = frames.shape
    chosen = np.unique(np.linspace(0, count - 1, min(count, SAMPLE_FRAMES)).round())
    picked = frames if len(chosen) == count else frames[chosen.astype(np.intp)]
    weights = np.concatenate([error_weights(frame).reshape(-1) for frame in picked])
    if len(picked) * height * width <= pixels:
        return PaletteSample(picked, weights)
    rows = max(1, pixels // width)
    at = np.random.default_rng(0).integers(0, len(picked) * height * width, rows * width)
    sample: NDArray[np.uint8] = picked.reshape(-1, 3)[at]
    return PaletteSample(sample.reshape(1, rows, width, 3), weights[at])


def refine_palette(
    frames: NDArray[np.uint8],
    colours: NDArray[np.uint8],
    *,
    iterations: int = REFINE_ITERATIONS,
    sample: int = REFINE_SAMPLE_PIXELS,
    fixed: Sequence[Rgb] = (),
    weights: NDArray[np.float32] | None = None,
) -> NDArray[np.uint8]:
    """Lloyd (k-means) iterations from FFmpeg's median-cut palette over a fixed pixel sample.

    ``fixed``: the palette's other entries (the caption's colours), which never move but take
    the pixels nearest them, as the frames' mapping will: the clip's colours spread over the
    rest (measured with the 18 caption colours: SSIM +0.0001 to +0.0019 on the five bench
    templates, bytes within ±0.6 %). Only the moving colours are returned.

    Measured on the Big stretch template against gifski: SSIM 0.9428 → 0.9506 at the same bytes.
    ``weights`` (one a pixel of ``frames``; ``palette_sample``'s SSIM weights) replace the plain
    count: the palette then spends its entries where an error costs SSIM most. Measured on the
    prepared frames alone (no caption, no stabilising): SSIM +0.0011 to +0.0018 on Head scratch,
    Big stretch and the real clip; the renders' figures are in bench/results.md.
    The sample is drawn with a fixed seed (deterministic), with replacement: drawing without it
    shuffled every pixel's position (52 MB and a second for 6.5 M pixels) for no better palette.
    """
    pixels = frames.reshape(-1, 3)
    if len(pixels) > sample:
        at = np.random.default_rng(0).integers(0, len(pixels), sample)
        pixels = pixels[at]
        weights = None if weights is None else weights[at]
    # Footage repeats colours: each distinct colour is matched once and weighted by its count,
    # or by the sum of its pixels' ``weights`` (the same centres as point by point).
    if weights is None:
        packed, totals = np.unique(_packed(pixels), return_counts=True)
    else:
        packed, inverse = np.unique(_packed(pixels), return_inverse=True)
        totals = np.bincount(inverse.reshape(-1), weights=weights)
    points = _unpacked(packed).astype(np.float32)
    weighted = [points[:, channel] * totals for channel in range(3)]
    moving = len(colours)
    centres = np.concatenate([colours, np.array(fixed, dtype=np.uint8).reshape(-1, 3)])
    centres = centres.astype(np.float32)
    previous = None
    for _ in range(iterations):
        nearest = _nearest_entries(points, centres)
        if previous is not None and np.array_equal(nearest, previous):
            break  # the same assignment gives the same centres: every further pass is a no-op
        previous = nearest
        counts = np.bincount(nearest, weights=totals, minlength=len(centres))
        used = counts > 0
        used[moving:] = False
        for channel in range(3):
            sums = np.bincount(nearest, weights=weighted[channel], minlength=len(centres))
            centres[used, channel] = sums[used] / counts[used]
    refined: NDArray[np.uint8] = np.clip(np.rint(centres[:moving]), 0, 255).astype(np.uint8)
    return refined


def _packed(rgb: NDArray[np.uint8]) -> NDArray[np.uint32]:
    """(..., 3) RGB as one 24-bit integer a pixel."""
    packed = rgb[..., 0].astype(np.uint32) << np.uint32(16)
    packed |= rgb[..., 1].astype(np.uint32) << np.uint32(8)
    packed |= rgb[..., 2]
    return packed


def _unpacked(packed: NDArray[np.uint32]) -> NDArray[np.uint32]:
    return np.stack([packed >> 16, (packed >> 8) & 0xFF, packed & 0xFF], axis=-1)


def build_palette(clip_colours: NDArray[np.uint8], reserved: list[Rgb]) -> NDArray[np.uint8]:
    """256 RGB entries: clip colours, then reserved colours, then the transparency slot.

    The transparency slot repeats the last real colour; nearest-colour searches skip it.
    """
    entries = [tuple(int(v) for v in c) for c in clip_colours] + list(reserved)
    entries = entries[:TRANSPARENT_INDEX]
    while len(entries) < TRANSPARENT_INDEX:
        entries.append(entries[-1] if entries else (0, 0, 0))
    entries.append(entries[-1])
    return np.array(entries, dtype=np.uint8)


def _nearest_entries(
    colours: NDArray[np.float32] | NDArray[np.uint32], usable: NDArray[np.float32]
) -> NDArray[np.int64]:
    """Index of the nearest entry (RGB distance) for each colour, in blocks to bound memory.

    |c − e|² = |c|² − 2c·e + |e|²; |c|² is the same for every entry, so it is left out, and the
    rest is one product, [c, 1] · [−2e, |e|²] (no separate addition: measured −30 %). For
    integer entries it is exact in float32 (integers below 2²⁴ at every step), ties to the
    lowest index. Small blocks (``_NEAREST_BLOCK``) into one reused buffer: measured 6–10×
    faster than 8,192-colour blocks on one core, which page-faulted fresh 8 MiB temporaries
    every block and passed OpenBLAS's size threshold for its worker threads.
    """
    weights = np.empty((4, len(usable)), dtype=np.float32)
    weights[:3] = -2 * usable.T  # × 2 is exact
    weights[3] = (usable**2).sum(axis=1)
    block = np.ones((_NEAREST_BLOCK, 4), dtype=np.float32)
    buffer = np.empty((_NEAREST_BLOCK, len(usable)), dtype=np.float32)
    nearest = np.empty(len(colours), dtype=np.int64)
    for start in range(0, len(colours), _NEAREST_BLOCK):
        chunk = colours[start : start + _NEAREST_BLOCK]
        size = len(chunk)
        block[:size, :3] = chunk
        distances = buffer[:size]
        np.matmul(block[:size], weights, out=distances)
        nearest[start : start + size] = distances.argmin(axis=1)
    return nearest


def nearest_indices(frames: NDArray[np.uint8], palette: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """The palette index nearest in RGB to every pixel; never the transparency slot.

    Exact RGB distance on purpose: FFmpeg's paletteuse measures in a perceptual space, which
    measured 0.948 SSIM on the Head scratch template against 0.962 for plain RGB-nearest.
    Each distinct colour of the clip is matched once (footage repeats colours a lot), found and
    looked up through a table over all 2²⁴ colours (16 MiB: no sort, bounded memory).
    """
    usable = palette[:TRANSPARENT_INDEX].astype(np.float32)
    table = np.zeros(1 << 24, dtype=np.uint8)
    for start in range(0, len(frames), _NEAREST_FRAMES):
        table[_packed(frames[start : start + _NEAREST_FRAMES])] = 1
    distinct = np.flatnonzero(table).astype(np.uint32)
    table[distinct] = _nearest_entries(_unpacked(distinct), usable)
    out = np.empty(frames.shape[:-1], dtype=np.uint8)
    for start in range(0, len(frames), _NEAREST_FRAMES):
        out[start : start + _NEAREST_FRAMES] = table[
            _packed(frames[start : start + _NEAREST_FRAMES])
        ]
    return out


def build_lut(palette: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Nearest palette index for every colour at LUT_BITS a channel (transparency excluded).

    By the same BLAS formulation as every other nearest-colour search (``_nearest_entries``):
    ‖e‖² − 2c·e in float32 is exact here (integers below 2²⁴ at every step), so the table is
    the brute-force one, ties to the lowest index included (a test checks a sample), measured
    3.4 → 0.2 s of a preparation.
    """
    levels = np.arange(1 << LUT_BITS, dtype=np.float32) * (1 << _LUT_SHIFT) + (
        (1 << _LUT_SHIFT) >> 1
    )
    r, g, b = np.meshgrid(levels, levels, levels, indexing="ij")
    colours = np.stack([r.ravel(), g.ravel(), b.ravel()], axis=1)
    usable = palette[:TRANSPARENT_INDEX].astype(np.float32)
    return _nearest_entries(colours, usable).astype(np.uint8)


def lookup(lut: NDArray[np.uint8], rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Palette indices of an (..., 3) RGB array through the look-up table."""
    levels = rgb.astype(np.int32) >> _LUT_SHIFT
    # numpy's stubs type fancy indexing as Any; the result has the table's dtype.
    indices: NDArray[np.uint8] = lut[
        (levels[..., 0] << (2 * LUT_BITS)) | (levels[..., 1] << LUT_BITS) | levels[..., 2]
    ]
    return indices


def stabilise(
    indices: NDArray[np.uint8],
    frames: NDArray[np.uint8],
    palette: NDArray[np.uint8],
    *,
    distance: float = STABILISE_DISTANCE,
) -> NDArray[np.uint8]:
    """Keep a pixel's previous index while it still represents the pixel well (in place).

    ``indices`` is (frames, …) and ``frames`` the same with RGB last: whole frames, or the
    pixels of a few columns gathered; each pixel's history is steadied on its own.

    Unchanged pixels become transparent in the GIF, and runs of transparency compress far better
    than the flicker of a pixel hopping between two near-identical palette entries.
    """
    limit = distance * distance
    colours = palette.astype(np.int32)
    # A view into a larger array (a render's text box) is worked on as a copy, written back.
    work = np.ascontiguousarray(indices)
    flat_indices = work.reshape(len(work), -1)
    flat_frames = frames.reshape(len(frames), -1, 3)
    for i in range(1, len(indices)):
        previous, current = flat_indices[i - 1], flat_indices[i]
        # Positions, not boolean masks, and the distance a channel at a time: measured 2.5×
        # faster than masks and an (n, 3) int32 difference, with the same indices.
        changed = np.flatnonzero(previous != current)
        if changed.size == 0:
            continue
        kept = previous[changed]
        pixels = flat_frames[i][changed]
        entries = colours[kept]
        error = (entries[:, 0] - pixels[:, 0]) ** 2
        error += (entries[:, 1] - pixels[:, 1]) ** 2
        error += (entries[:, 2] - pixels[:, 2]) ** 2
        # Never a "leave what is shown" (palette_groups.keep_across): it is no colour of its own.
        keep = (error <= limit) & (kept != TRANSPARENT_INDEX)
        current[changed[keep]] = kept[keep]
    if work is not indices:
        indices[...] = work
    return indices


def tune_stabilise_distance(
    frames: NDArray[np.uint8],
    nearest: NDArray[np.uint8],
    palette: NDArray[np.uint8],
    *,
    floor: float = STABILISE_SSIM_FLOOR,
    candidates: tuple[float, ...] = STABILISE_CANDIDATES,
) -> float:
    """The largest candidate distance whose stabilised frames keep SSIM ≥ ``floor`` against the
    unquantised ``frames`` (``nearest``: their unstabilised indices); the smallest candidate when
    none does. SSIM falls as the distance grows, so the candidates are searched by bisection
    over the first ``_TUNE_FRAMES`` frames (about 0.1 s a candidate at 480 px).
    """
    count = min(len(frames), _TUNE_FRAMES)
    scored = [i for i in _TUNE_SCORED if i < count] or [count - 1]

    references = {i: Reference(frames[i]) for i in scored}  # the same for every candidate

    def score(distance: float) -> float:
        indices = stabilise(np.array(nearest[:count]), frames[:count], palette, distance=distance)
        return float(np.mean([references[i].ssim(palette[indices[i]]) for i in scored]))

    lo, hi = 0, len(candidates) - 1  # invariant: every candidate below lo keeps the floor
    best = candidates[0]
    while lo <= hi:
        middle = (lo + hi) // 2
        if score(candidates[middle]) >= floor:
            best = candidates[middle]
            lo = middle + 1
        else:
            hi = middle - 1
    return best
