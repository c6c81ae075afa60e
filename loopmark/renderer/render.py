"""The per-caption render: a prepared template and a caption → GIF, MP4, poster and share card.

Only the caption's box is touched: its layer is blended over the box in every frame, those
pixels are mapped onto the template's palette, and the frames are encoded. The caption reaches
FFmpeg only as pixels, never as text.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar, cast

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from loopmark.brand import Brand, demo_brand
from loopmark.errors import N_, CaptionRejected
from loopmark.renderer.budget import BudgetOutcome, fit_gif_budget
from loopmark.renderer.caption import render_caption_layer
from loopmark.renderer.caption_policy import WordLists, check_caption, normalize_caption
from loopmark.renderer.card import KeptCard, card_frame_size
from loopmark.renderer.gif import encode_gif, frame_delays_cs, gifsicle_optimise
from loopmark.renderer.prepare import POSTER_JPEG_QUALITY, PREPARE_VERSION, PreparedTemplate
from loopmark.renderer.quantize import lookup, stabilise
from loopmark.renderer.rescale import KeptRescale
from loopmark.renderer.templates import Template
from loopmark.renderer.video import encode_mp4_chunks

RENDERER_VERSION = "4"  # 3: one x264 thread; 4: the template's stabilise distance
KEY_CHARS = 24  # base32: 120 bits, and a share path /s/<key> of 27 characters
ProgressCallback = Callable[[float], None]
THUMBNAIL_WIDTH = 320
THUMBNAIL_JPEG_QUALITY = 82


@dataclass(frozen=True)
class RenderSettings:
    """Everything besides template and caption that changes a render's bytes (part of its key)."""

    gifsicle_level: str = ""
    # None: the template's own (tuned at preparation or set in template.toml; fixed by the
    # template and preparation versions, which the key holds). A number overrides it.
    stabilise_distance: float | None = None
    # The largest GIF (renderer.budget). None: the template's own (``Template.max_gif_bytes``,
    # template.toml's or the brand's); a number overrides it (benchmarks, tests).
    max_gif_bytes: int | None = None


def gif_budget_of(template: Template, settings: RenderSettings | None = None) -> int | None:
    """The GIF size budget a render of ``template`` under ``settings`` keeps to (None: none)."""
    if settings is not None and settings.max_gif_bytes is not None:
        return settings.max_gif_bytes
    return template.max_gif_bytes


@dataclass(frozen=True)
class RenderResult:
    key: str
    gif: bytes
    mp4: bytes
    poster: bytes
    card: bytes  # the 1200×630 share card (renderer.card): not part of the key
    thumbnail: bytes  # a THUMBNAIL_WIDTH px JPEG of the first composed frame
    frames: int
    width: int
    height: int
    seconds: float
    # What the GIF size budget did (None: the render had none); frames, width and height above
    # are the render's own (the MP4's, the poster's), the budget's are the GIF's.
    budget: BudgetOutcome | None = None


def render_key(template: Template, caption: str, settings: RenderSettings | None = None) -> str:
    """Content address of a render: same template version, caption and settings → same key.

    For a caption as written (a job's, a test's): it is normalised first. A caller holding
    ``accept_caption``'s result uses ``normalised_render_key`` and skips that second pass.
    """
    return normalised_render_key(template, normalize_caption(caption), settings)


def normalised_render_key(
    template: Template, normalised: str, settings: RenderSettings | None = None
) -> str:
    """``render_key`` of a caption already normalised (by ``accept_caption`` or
    ``normalize_caption``); a caption in any other form gives a key no render has."""
    settings = settings or RenderSettings()
    material = {
        "renderer": RENDERER_VERSION,
        "prepare": PREPARE_VERSION,
        "template": template.id,
        "version": template.version,
        "caption": normalised,
        "gifsicle": settings.gifsicle_level,
        "stabilise": settings.stabilise_distance,
    }
    budget = gif_budget_of(template, settings)
    if budget is not None:  # only then: keys of renders without a budget stay as they were
        material["budget"] = budget
    digest = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:KEY_CHARS]


def accept_caption(template: Template, caption: str, words: WordLists | None = None) -> str:
    """The caption policy plus the template's own rule; returns the normalised caption (empty
    for no caption, where the template allows none)."""
    if template.caption_optional and not caption.strip():
        return ""
    normalised = check_caption(caption, words)
    if template.caption_mode == "presets":
        offered = {normalize_caption(c) for c in template.captions}
        if normalised not in offered:
            raise CaptionRejected(
                N_("Please pick one of this loop's captions."), code="caption_not_offered"
            )
    return normalised


def caption_layer(prepared: PreparedTemplate, caption: str) -> NDArray[np.uint8]:
    box = prepared.box
    if not caption:  # no caption (a clip's render): a transparent layer
        return np.zeros((box.h, box.w, 4), dtype=np.uint8)
    layer = render_caption_layer(caption, (box.w, box.h), prepared.template.style)
    return np.asarray(layer, dtype=np.uint8)


def _ink(layer: NDArray[np.uint8]) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """The caption layer's ink, split: fully opaque pixels, and the semi-transparent edge."""
    alpha = layer[..., 3]
    return alpha == 255, (alpha > 0) & (alpha < 255)


def _positions(prepared: PreparedTemplate, mask: NDArray[np.bool_]) -> NDArray[np.intp]:
    """Where ``mask``'s pixels (a mask of the caption box) sit in a flattened frame, in the
    mask's own row-major order (the order ``region[:, mask]`` takes them in)."""
    box = prepared.box
    ys, xs = np.nonzero(mask)
    positions: NDArray[np.intp] = (ys + box.y) * prepared.width + (xs + box.x)
    return positions


def _channels(positions: NDArray[np.intp]) -> NDArray[np.intp]:
    """The byte offsets of RGB pixels at ``positions`` in a flattened frame."""
    offsets: NDArray[np.intp] = (positions[:, None] * 3 + np.arange(3)).ravel()
    return offsets


@dataclass(frozen=True)
class _Ink:
    """A caption layer's ink as offsets into a flattened frame: opaque pixels with their
    colours, and the semi-transparent edge with its colours and alphas."""

    opaque_pixels: NDArray[np.intp]  # pixel offsets of the opaque ink
    opaque: NDArray[np.intp]  # byte offsets (three a pixel)
    colours: NDArray[np.uint8]  # their bytes
    edge_pixels: NDArray[np.intp]  # pixel offsets of the edge
    edge: NDArray[np.intp]  # byte offsets of the edge
    ink: NDArray[np.uint8]  # (k, 3) the edge's colours
    alpha: NDArray[np.float32]  # (k, 1) the edge's alphas, 0..1


def _ink_of(prepared: PreparedTemplate, layer: NDArray[np.uint8]) -> _Ink:
    opaque, edge = _ink(layer)
    opaque_pixels = _positions(prepared, opaque)
    edge_pixels = _positions(prepared, edge)
    ink = layer[edge]
    return _Ink(
        opaque_pixels=opaque_pixels,
        opaque=_channels(opaque_pixels),
        colours=layer[opaque][:, :3].ravel(),
        edge_pixels=edge_pixels,
        edge=_channels(edge_pixels),
        ink=ink[:, :3],
        alpha=ink[:, 3:].astype(np.float32) / 255.0,
    )


def _blend(under: NDArray[np.uint8], ink: _Ink) -> NDArray[np.uint8]:
    """(frames, k, 3) pixels under the edge with the edge blended over them (float32)."""
    blended = under.astype(np.float32) * (1 - ink.alpha) + ink.ink * ink.alpha
    return np.rint(blended).astype(np.uint8)


def _compose(prepared: PreparedTemplate, ink: _Ink, start: int, stop: int) -> NDArray[np.uint8]:
    """Frames ``start:stop`` with the caption blended in (a fresh copy)."""
    frames = np.array(prepared.frames[start:stop])
    flat = frames.reshape(len(frames), -1)
    flat[:, ink.opaque] = ink.colours
    if ink.edge.size:
        under = flat[:, ink.edge].reshape(len(frames), -1, 3)
        flat[:, ink.edge] = _blend(under, ink).reshape(len(frames), -1)
    return frames


# Frames composed at a time for FFmpeg's stdin: 8 frames at 480×270 are 3 MB.
MP4_CHUNK_FRAMES = 8


def composed_chunks(
    prepared: PreparedTemplate,
    layer: NDArray[np.uint8],
    frames: int | None = None,
    *,
    ink: _Ink | None = None,
) -> Iterator[NDArray[np.uint8]]:
    """The composed frames, ``frames`` (MP4_CHUNK_FRAMES) at a time: ``compose_frames``'s very
    bytes without all of them in memory at once (the MP4's input). ``ink``: ``layer``'s, when
    the caller already has it."""
    frames = frames or MP4_CHUNK_FRAMES
    if ink is None:
        ink = _ink_of(prepared, layer)
    for start in range(0, prepared.frame_count, frames):
        yield _compose(prepared, ink, start, min(start + frames, prepared.frame_count))


def compose_frames(prepared: PreparedTemplate, layer: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """The unquantised truth: every frame with the caption layer blended into its box.

    Only the ink is touched: an opaque pixel is the layer's colour in every frame, and only the
    semi-transparent edge is blended (in float32, as a blend of the whole box would be: the
    same bytes, measured 26 → 4 ms for a 480 px, 36-frame render). Both are written through
    their offsets in the flattened frames, not boolean masks over the box's strided view (the
    same bytes; the opaque write measured 10 → 3 ms for 50 frames).
    """
    return _compose(prepared, _ink_of(prepared, layer), 0, prepared.frame_count)


def caption_indices(
    prepared: PreparedTemplate,
    composed: NDArray[np.uint8] | None,
    layer: NDArray[np.uint8],
    settings: RenderSettings,
    *,
    ink: _Ink | None = None,
) -> NDArray[np.uint8]:
    """The template's indices with the caption's pixels mapped into the box (``composed``:
    ``compose_frames``'s result, or None to compose only what is needed; ``ink``: ``layer``'s
    ``_ink_of``, when the caller already has it).

    An opaque ink pixel is looked up once (it is the same colour in every frame) and never
    flickers; only the semi-transparent edge is looked up per frame and stabilised. Pixels the
    caption does not touch were stabilised at preparation; they are stabilised again here only
    when the render asks for another distance than the template was prepared with.
    """
    if prepared.grouped:
        return _grouped_caption_indices(prepared, composed, layer, settings)
    box = prepared.box
    indices = np.array(prepared.indices)
    count = len(indices)
    flat = indices.reshape(count, -1)
    if ink is None:
        ink = _ink_of(prepared, layer)
    flat[:, ink.opaque_pixels] = lookup(prepared.lut, ink.colours.reshape(-1, 3))
    distance = settings.stabilise_distance
    if distance is None:
        distance = prepared.stabilise_distance
    if distance != prepared.stabilise_distance:
        if composed is None:
            composed = compose_frames(prepared, layer)
        rows = slice(box.y, box.y + box.h)
        cols = slice(box.x, box.x + box.w)
        region = indices[:, rows, cols]
        truth = composed[:, rows, cols]
        _opaque, edge = _ink(layer)
        region[:, edge] = lookup(prepared.lut, truth[:, edge])
        stabilise(region, truth, prepared.palette, distance=distance)
    elif ink.edge_pixels.size:
        # Anti-aliased edges over moving footage flicker between near colours; steady them as
        # the template's own pixels were.
        at = ink.edge_pixels
        if composed is None:  # the edge's truth alone, blended as compose_frames blends it
            truth_edge = _blend(prepared.frames.reshape(count, -1, 3)[:, at], ink)
        else:
            truth_edge = composed.reshape(count, -1, 3)[:, at]
        edge_indices = lookup(prepared.lut, truth_edge)
        flat[:, at] = stabilise(edge_indices, truth_edge, prepared.palette, distance=distance)
    return indices


def _grouped_caption_indices(
    prepared: PreparedTemplate,
    composed: NDArray[np.uint8] | None,
    layer: NDArray[np.uint8],
    settings: RenderSettings,
) -> NDArray[np.uint8]:
    """``caption_indices`` of a template with a palette per group of frames: each group's on its
    own palette, its edge stabilised from the group's first frame (an index kept across a
    palette change would mean another colour; the encoder compares displayed colours there)."""
    return np.concatenate(
        [
            caption_indices(view, None if composed is None else composed[s], layer, settings)
            for s, view in prepared.group_views()
        ]
    )


def encode_prepared_gif(
    prepared: PreparedTemplate,
    indices: NDArray[np.uint8],
    delays: Sequence[int],
    *,
    on_frame: Callable[[int], None] | None = None,
    groups: NDArray[np.intp] | None = None,
) -> bytes:
    """``encode_gif`` on the template's palettes: ``groups`` (``prepared.frame_groups()`` for
    the template's own frames) picks each frame's; None: every frame on the global one."""
    if groups is None or prepared.palettes is None:
        return encode_gif(indices, prepared.palette, delays, on_frame=on_frame)
    return encode_gif(
        indices,
        prepared.palette,
        delays,
        on_frame=on_frame,
        palettes=prepared.palettes,
        groups=groups,
    )


def render(
    prepared: PreparedTemplate,
    caption: str,
    *,
    words: WordLists | None = None,
    settings: RenderSettings | None = None,
    progress: ProgressCallback | None = None,
    brand: Brand | None = None,
) -> RenderResult:
    """Render a caption as written on a prepared template (the command line, tests). Raises
    CaptionRejected for a refused caption. The caption is normalised once, by
    ``accept_caption``, and the key computed once from that."""
    settings = settings or RenderSettings()
    normalised = accept_caption(prepared.template, caption, words)
    key = normalised_render_key(prepared.template, normalised, settings)
    return render_accepted(
        prepared, normalised, key, settings=settings, progress=progress, brand=brand
    )


def render_accepted(
    prepared: PreparedTemplate,
    normalised: str,
    key: str,
    *,
    settings: RenderSettings | None = None,
    progress: ProgressCallback | None = None,
    brand: Brand | None = None,
) -> RenderResult:
    """Render a caption that ``accept_caption`` already accepted, under the ``key`` computed
    from it (``normalised_render_key``): every rendition at once (the command line, tests).
    Nothing here checks or normalises the caption again. The render service runs the same two
    stages itself, ``render_gif_stage`` then ``render_extras``, to store the GIF first.
    ``brand`` (the demo brand by default) only dresses the share card, not part of the key."""
    stage = render_gif_stage(prepared, normalised, key, settings=settings, progress=progress)
    extras = dict(render_extras(prepared, stage, progress=progress, brand=brand))
    return RenderResult(
        key=key,
        gif=stage.gif,
        mp4=extras["mp4"],
        poster=extras["poster"],
        card=extras["card"],
        thumbnail=extras["thumbnail"],
        frames=stage.frames,
        width=stage.width,
        height=stage.height,
        seconds=stage.seconds,
        budget=stage.budget,
    )


@dataclass(frozen=True)
class GifStage:
    """The first stage of a render: the GIF, and the caption layer the other renditions are
    composed from (``render_extras``; ``compose_frames(prepared, stage.layer)`` gives every
    frame with the caption, the unquantised truth)."""

    key: str
    gif: bytes
    layer: NDArray[np.uint8]  # the caption's RGBA layer, the size of the text box
    frames: int
    width: int
    height: int
    seconds: float
    budget: BudgetOutcome | None = None  # what the GIF size budget did (None: no budget)
    # The layer's ink as frame offsets (made once for the indices, reused by the extras; None:
    # made again from ``layer``).
    ink: _Ink | None = None


# Where the stages' progress reports sit in 0..1: the GIF's frames are most of the CPU up to
# the GIF, the MP4 about a third of the whole.
GIF_PROGRESS_START = 0.05
GIF_PROGRESS_END = 0.65
GIF_DONE_PROGRESS = 0.7
EXTRA_PROGRESS = {"poster": 0.72, "thumbnail": 0.73, "mp4": 0.95, "card": 1.0}
# The order the extras are made (and a service stores them): the poster first, cheap, so pages
# have a still before the MP4 lands; the share card last.
EXTRA_KINDS = ("poster", "thumbnail", "mp4", "card")


def render_gif_stage(
    prepared: PreparedTemplate,
    normalised: str,
    key: str,
    *,
    settings: RenderSettings | None = None,
    progress: ProgressCallback | None = None,
) -> GifStage:
    """Stage one of a render of an accepted caption: layout, compose, palette indices and the
    GIF. What a visitor waits for; the MP4, poster and card follow from ``render_extras``."""
    settings = settings or RenderSettings()
    report = progress or (lambda _fraction: None)
    layer = caption_layer(prepared, normalised)
    # Not every frame composed: the GIF needs only the edge's truth, the MP4 composes its
    # input a few frames at a time (render_extras), so no full copy of the frames is held.
    ink = _ink_of(prepared, layer)
    indices = caption_indices(prepared, None, layer, settings, ink=ink)
    count = prepared.frame_count
    report(GIF_PROGRESS_START)
    span = GIF_PROGRESS_END - GIF_PROGRESS_START
    delays = frame_delays_cs(count, prepared.fps)
    # Progress is real: GIF frames encoded, then the extras.
    groups = prepared.frame_groups() if prepared.grouped else None
    gif = encode_prepared_gif(
        prepared,
        indices,
        delays,
        on_frame=lambda i: report(GIF_PROGRESS_START + span * (i + 1) / count),
        groups=groups,
    )
    gif = gifsicle_optimise(gif, settings.gifsicle_level)
    budget = gif_budget_of(prepared.template, settings)
    outcome = None
    if budget is not None:

        def encode(step_indices: NDArray[np.uint8], step_delays: Sequence[int]) -> bytes:
            stepped = encode_gif(step_indices, prepared.palette, step_delays)
            return gifsicle_optimise(stepped, settings.gifsicle_level)

        gif, outcome = fit_gif_budget(
            gif,
            budget,
            composed=lambda: compose_frames(prepared, layer),
            indices=indices,
            palette=prepared.palette,
            lut=prepared.lut,
            stabilise_distance=_distance(prepared, settings),
            delays_cs=delays,
            fps=prepared.fps,
            encode=encode,
            remap=prepared.grouped,
        )
    report(GIF_DONE_PROGRESS)
    return GifStage(
        key=key,
        gif=gif,
        layer=layer,
        frames=count,
        width=prepared.width,
        height=prepared.height,
        seconds=round(prepared.seconds, 3),
        budget=outcome,
        ink=ink,
    )


def _distance(prepared: PreparedTemplate, settings: RenderSettings) -> float:
    """The stabilise distance a render uses: its settings', else the template's."""
    if settings.stabilise_distance is None:
        return prepared.stabilise_distance
    return settings.stabilise_distance


def render_extras(
    prepared: PreparedTemplate,
    stage: GifStage,
    *,
    progress: ProgressCallback | None = None,
    brand: Brand | None = None,
    card_line: str | None = None,
) -> Iterator[tuple[str, bytes]]:
    """Stage two: ``(kind, bytes)`` for the poster, the thumbnail, the MP4 and the share card,
    in that order (EXTRA_KINDS), each made only when the caller asks for it, so a caller can
    store each rendition as it lands. ``card_line``: the card's brand line in the render's
    language (the brand's ``share.card_line`` as written by default)."""
    report = progress or (lambda _fraction: None)
    ink = stage.ink if stage.ink is not None else _ink_of(prepared, stage.layer)
    first = _compose(prepared, ink, 0, 1)
    for kind in EXTRA_KINDS:
        if kind == "poster":
            payload = poster_jpeg(first)
        elif kind == "thumbnail":
            payload = render_thumbnail(prepared, first[0])
        elif kind == "mp4":
            payload = encode_mp4_chunks(
                composed_chunks(prepared, stage.layer, ink=ink),
                width=prepared.width,
                height=prepared.height,
                fps=prepared.fps,
            )
        else:
            payload = card_jpeg(prepared, first[0], brand or demo_brand(), line=card_line)
        report(EXTRA_PROGRESS[kind])
        yield kind, payload


def card_jpeg(
    prepared: PreparedTemplate,
    first: NDArray[np.uint8],
    brand: Brand,
    *,
    line: str | None = None,
) -> bytes:
    """The share card of a render of ``prepared`` whose first composed frame is ``first``:
    ``share_card(first, brand, line=line)``'s very bytes, from the template's own card
    composed once per brand and line (``KeptCard``)."""
    size = card_frame_size(prepared.width, prepared.height)
    scale = _kept(prepared, ("card scale",), lambda base, rows: KeptRescale(base, size, rows))
    colours = brand.colours
    purpose = ("card", colours.primary, colours.accent, colours.text, line, brand.share.card_line)
    kept = _kept(prepared, purpose, lambda base, _rows: KeptCard(base, scale, brand, line=line))
    return kept(first)


def render_thumbnail(prepared: PreparedTemplate, first: NDArray[np.uint8]) -> bytes:
    """``thumbnail_jpeg(first)``'s very bytes for a render of ``prepared`` (``first``: its first
    composed frame), the scaling redone only where the caption box reaches (``_kept``)."""
    size = thumbnail_size(prepared.width, prepared.height)
    if size == (prepared.width, prepared.height):
        return thumbnail_jpeg(first)
    kept = _kept(prepared, ("thumbnail",), lambda base, rows: KeptRescale(base, size, rows))
    return thumbnail_jpeg(first, scaled=kept(first))


# Per prepared template, the Lanczos scalings of its first frame the card and the thumbnail
# start from (renderer.rescale): by the id of its frames, held weakly, so a template dropped or
# reloaded takes its entries with it (a frozen dataclass of arrays has no hash for a
# WeakKeyDictionary). Two renders racing make one twice, harmlessly.
_Kept = TypeVar("_Kept")
_KEPT: dict[int, tuple[weakref.ref[NDArray[np.uint8]], dict[tuple[str | None, ...], object]]] = {}
# The scalings (about 2 MB for the card's, 0.3 MB for the thumbnail's at 480×270) and a 3 MB card
# per brand and card line in use; past this many a template's entries are made afresh.
_KEPT_PER_TEMPLATE = 8


def _kept(
    prepared: PreparedTemplate,
    purpose: tuple[str | None, ...],
    make: Callable[[NDArray[np.uint8], slice], _Kept],
) -> _Kept:
    """``make(first frame, caption box rows)`` for the template, made once per ``purpose``: a
    render's first frame differs from the template's own only in the caption box's rows."""
    frames = prepared.frames
    key = id(frames)
    entry = _KEPT.get(key)
    if entry is None or entry[0]() is not frames:
        gone = weakref.ref(frames, lambda _ref: _KEPT.pop(key, None))
        _KEPT[key] = entry = (gone, {})
    kept = entry[1].get(purpose)
    if kept is None:
        if len(entry[1]) >= _KEPT_PER_TEMPLATE:
            entry[1].clear()
        rows = slice(prepared.box.y, prepared.box.y + prepared.box.h)
        kept = entry[1][purpose] = make(np.ascontiguousarray(frames[0]), rows)
    return cast(_Kept, kept)


def poster_jpeg(composed: NDArray[np.uint8]) -> bytes:
    """The poster: the first composed frame as a JPEG."""
    poster = io.BytesIO()
    Image.fromarray(composed[0]).save(poster, "JPEG", quality=POSTER_JPEG_QUALITY)
    return poster.getvalue()


def thumbnail_size(width: int, height: int) -> tuple[int, int]:
    """A thumbnail's size: THUMBNAIL_WIDTH px wide (never wider than the frame)."""
    thumb_width = min(THUMBNAIL_WIDTH, width)
    return thumb_width, max(1, round(height * thumb_width / width))


def thumbnail_jpeg(frame: NDArray[np.uint8], *, scaled: NDArray[np.uint8] | None = None) -> bytes:
    """A THUMBNAIL_WIDTH px wide JPEG of a composed frame (never wider than the frame).
    ``scaled``: the frame already Lanczos-scaled to ``thumbnail_size`` (renderer.rescale)."""
    image = Image.fromarray(frame)
    width, height = thumbnail_size(image.width, image.height)
    if scaled is not None:
        if scaled.shape[:2] != (height, width):
            raise ValueError(f"scaled is {scaled.shape[:2]}, not {(height, width)}")
        image = Image.fromarray(scaled)
    elif width != image.width:
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=THUMBNAIL_JPEG_QUALITY)
    return out.getvalue()
