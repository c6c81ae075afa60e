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
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from loopmark.brand import Brand, demo_brand
from loopmark.errors import N_, CaptionRejected
from loopmark.renderer.caption import render_caption_layer
from loopmark.renderer.caption_policy import WordLists, check_caption, normalize_caption
from loopmark.renderer.card import share_card
from loopmark.renderer.gif import encode_gif, frame_delays_cs, gifsicle_optimise
from loopmark.renderer.prepare import POSTER_JPEG_QUALITY, PREPARE_VERSION, PreparedTemplate
from loopmark.renderer.quantize import STABILISE_DISTANCE, lookup, stabilise
from loopmark.renderer.templates import Template
from loopmark.renderer.video import encode_mp4

RENDERER_VERSION = "2"  # 2: balanced line breaks
KEY_CHARS = 24  # base32: 120 bits, and a share path /s/<key> of 27 characters
ProgressCallback = Callable[[float], None]


@dataclass(frozen=True)
class RenderSettings:
    """Everything besides template and caption that changes a render's bytes (part of its key)."""

    gifsicle_level: str = ""
    stabilise_distance: float = STABILISE_DISTANCE


@dataclass(frozen=True)
class RenderResult:
    key: str
    gif: bytes
    mp4: bytes
    poster: bytes
    card: bytes  # the 1200×630 share card (renderer.card): not part of the key
    frames: int
    width: int
    height: int
    seconds: float


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
    digest = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:KEY_CHARS]


def accept_caption(template: Template, caption: str, words: WordLists | None = None) -> str:
    """The caption policy plus the template's own rule; returns the normalised caption."""
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
    layer = render_caption_layer(caption, (box.w, box.h), prepared.template.style)
    return np.asarray(layer, dtype=np.uint8)


def compose_frames(prepared: PreparedTemplate, layer: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """The unquantised truth: every frame with the caption layer blended into its box."""
    box = prepared.box
    frames = np.array(prepared.frames)  # a private copy of the memory-mapped frames
    region = frames[:, box.y : box.y + box.h, box.x : box.x + box.w]
    alpha = layer[..., 3:].astype(np.float32) / 255.0
    blended = region.astype(np.float32) * (1 - alpha) + layer[..., :3].astype(np.float32) * alpha
    region[...] = np.rint(blended).astype(np.uint8)
    return frames


def caption_indices(
    prepared: PreparedTemplate,
    composed: NDArray[np.uint8],
    layer: NDArray[np.uint8],
    settings: RenderSettings,
) -> NDArray[np.uint8]:
    """The template's indices with the caption's pixels mapped into the box."""
    box = prepared.box
    indices = np.array(prepared.indices)
    inked = layer[..., 3] > 0
    rows = slice(box.y, box.y + box.h)
    cols = slice(box.x, box.x + box.w)
    region = indices[:, rows, cols]
    region[:, inked] = lookup(prepared.lut, composed[:, rows, cols][:, inked])
    # Anti-aliased edges over moving footage flicker between near colours; steady them as the
    # template's own pixels were.
    stabilise(region, composed[:, rows, cols], prepared.palette,
              distance=settings.stabilise_distance)  # fmt: skip
    return indices


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
    from it (``normalised_render_key``): the render service's path, which checked both before
    it queued the job. Nothing here checks or normalises the caption again. ``brand`` (the demo
    brand by default) only dresses the share card, which is not part of the key."""
    settings = settings or RenderSettings()
    report = progress or (lambda _fraction: None)
    layer = caption_layer(prepared, normalised)
    composed = compose_frames(prepared, layer)
    indices = caption_indices(prepared, composed, layer, settings)
    count = prepared.frame_count
    report(0.05)
    # Progress is real: GIF frames encoded, then the MP4 (about a third of the time).
    gif = encode_gif(
        indices,
        prepared.palette,
        frame_delays_cs(count, prepared.fps),
        on_frame=lambda i: report(0.05 + 0.6 * (i + 1) / count),
    )
    gif = gifsicle_optimise(gif, settings.gifsicle_level)
    report(0.7)
    mp4 = encode_mp4(composed, fps=prepared.fps)
    report(0.95)
    poster = io.BytesIO()
    Image.fromarray(composed[0]).save(poster, "JPEG", quality=POSTER_JPEG_QUALITY)
    card = share_card(composed[0], brand or demo_brand())
    report(1.0)
    return RenderResult(
        key=key,
        gif=gif,
        mp4=mp4,
        poster=poster.getvalue(),
        card=card,
        frames=count,
        width=prepared.width,
        height=prepared.height,
        seconds=round(prepared.seconds, 3),
    )
