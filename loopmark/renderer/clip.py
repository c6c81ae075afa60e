"""One-off templates made from a visitor's clip: the brand's default frame and caption style over
a trim of the visitor's video, prepared and rendered exactly as the brand's own templates are.

A clip template's id and version come from the upload's content hash, the trim and the brand's
style (never from the file's name or its storage key), so the same clip and choices give the same
render key whoever uploads them, and a render key survives the upload's deletion.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from loopmark.renderer.templates import (
    OUTPUT_MAX_WIDTH,
    OUTPUT_MIN_WIDTH,
    Template,
    TextBox,
    _file_digest,
)

CLIP_ID_PREFIX = "u-"
CLIP_ID_HEX_CHARS = 32  # "u-" + 32 hex: 34 characters, within a template id's 40
CLIP_FPS = 12
# The longest side of a clip's output: a landscape clip is 480 px wide, a portrait one 480 px
# tall (a 480×854 portrait GIF of 3 s weighed 5.5 MB; 270×480 is about a third of that).
CLIP_MAX_SIDE = OUTPUT_MAX_WIDTH
# A clip's source may be as big as the site's upload limit; the upload route enforced that
# limit already, this only keeps the probe's own sanity bound.
CLIP_SOURCE_MAX_BYTES = 128 * 1024 * 1024
CLIP_NAME = "Your clip"


def is_clip_id(template_id: str) -> bool:
    return template_id.startswith(CLIP_ID_PREFIX)


def clip_id(content_sha256: str, start_s: float, duration_s: float) -> str:
    """The template id of a trim of an upload: a hash of its content and the trim (in ms)."""
    material = f"{content_sha256}:{round(start_s * 1000)}:{round(duration_s * 1000)}"
    return CLIP_ID_PREFIX + hashlib.sha256(material.encode()).hexdigest()[:CLIP_ID_HEX_CHARS]


def clip_width(source_width: int, source_height: int) -> int:
    """Output width: the longest side at most CLIP_MAX_SIDE, even, at least OUTPUT_MIN_WIDTH."""
    if source_height <= source_width:
        width = CLIP_MAX_SIDE
    else:
        width = round(CLIP_MAX_SIDE * source_width / source_height)
    width = min(width, CLIP_MAX_SIDE, max(source_width, OUTPUT_MIN_WIDTH))
    return max(OUTPUT_MIN_WIDTH, width - width % 2)


@dataclass(frozen=True)
class ClipTemplate(Template):
    """A template over a visitor's clip. Its version hashes the content hash instead of the
    source file, so it is known without the file (deleted once the clip is prepared)."""

    content_sha256: str = ""

    source_max_bytes: ClassVar[int] = CLIP_SOURCE_MAX_BYTES
    caption_optional: ClassVar[bool] = True
    # The brand's frame is drawn for a landscape loop; a portrait or square clip keeps its
    # corners (the logo) at their proportions instead of squashing them.
    frame_keeps_corners: ClassVar[bool] = True

    @functools.cached_property
    def version(self) -> str:
        digest = hashlib.sha256()
        settings = (
            "clip", "corners", self.content_sha256, self.start_s, self.duration_s, self.width,
            self.fps, self.loop, self.speed, self.box, self.style.fill, self.style.stroke,
            self.style.stroke_width, self.style.align, self.style.max_lines, self.style.max_size,
            self.style.min_size,
        )  # fmt: skip
        digest.update(repr(settings).encode())
        for path in (self.frame, self.style.font):
            digest.update(b"\0" if path is None else _file_digest(path).encode())
        return digest.hexdigest()[:16]


def clip_template(
    base: Template,
    *,
    template_id: str,
    source: Path,
    content_sha256: str,
    start_s: float,
    duration_s: float,
    source_width: int,
    source_height: int,
    frame: Path | None = None,
) -> ClipTemplate:
    """The clip as a template: ``frame`` (the brand's default frame) over it, and ``base`` (the
    brand's style template) gives the caption's style, and the frame when ``frame`` is None;
    the box is the default lower third of the clip's own shape."""
    width = clip_width(source_width, source_height)
    values = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
    values.update(
        id=template_id,
        folder=source.parent,
        name=CLIP_NAME,
        source=source,
        start_s=round(start_s, 3),
        duration_s=round(duration_s, 3),
        width=width,
        fps=CLIP_FPS,
        loop="forward",
        speed=1.0,
        box=TextBox(width // 16, 0, width - width // 8, 0),
        captions=(),
        caption_mode="free",
        credit="",
        enabled=True,
        raw={},
        content_sha256=content_sha256,
        frame=base.frame if frame is None else frame,
    )
    return ClipTemplate(**values)
