"""Creating a template from any video: hardened probe, sensible defaults, an atomic folder.

Used by ``loopmark templates add`` and the admin's upload form.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from PIL import Image

from loopmark.errors import N_, OptionRejected
from loopmark.renderer.prepare import PreparedTemplate, output_height, prepare_template
from loopmark.renderer.probe import probe_video
from loopmark.renderer.templates import (
    OUTPUT_MAX_FPS,
    OUTPUT_MAX_WIDTH,
    OUTPUT_MIN_WIDTH,
    SOURCE_USED_SECONDS,
    TEMPLATE_FILE,
    TEMPLATE_ID_PATTERN,
    Template,
    load_template,
)

DEFAULT_DURATION_SECONDS = 3.0
DEFAULT_FPS = 12
FRAME_MAX_PIXELS = 4096 * 4096
SOURCE_EXTENSIONS = {"gif": ".gif", "matroska,webm": ".webm"}


@dataclass(frozen=True)
class NewTemplate:
    template_id: str
    video: Path
    start_s: float = 0.0
    duration_s: float | None = None
    width: int = OUTPUT_MAX_WIDTH
    fps: int = DEFAULT_FPS
    frame: Path | None = None
    name: str | None = None
    # False: a draft, hidden from visitors until published (the admin's uploads start so).
    published: bool = True


def _check_frame_png(path: Path) -> None:
    """The branding frame must be a real PNG of sane size; decided from its header first."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.format != "PNG":
                    raise OptionRejected("--frame", N_("%(option)s must be a PNG image."))
                if img.width * img.height > FRAME_MAX_PIXELS:
                    raise OptionRejected(
                        "--frame",
                        N_("%(option)s is %(width)d×%(height)d; the limit is 4096×4096."),
                        params={"width": img.width, "height": img.height},
                    )
                img.verify()
    except FileNotFoundError:
        raise OptionRejected("--frame", N_("%(option)s: there is no such file.")) from None
    except (OSError, SyntaxError, Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise OptionRejected("--frame", N_("%(option)s is not a readable PNG image.")) from None


def add_template(spec: NewTemplate, templates_dir: Path, prepared_dir: Path) -> PreparedTemplate:
    """Probe, copy and describe a new template, then prepare it; nothing is left on failure."""
    template = create_template(spec, templates_dir)
    # A clip that passes the probe but fails to decode must not stay behind as a template.
    try:
        return prepare_template(template, prepared_dir)
    except BaseException:
        shutil.rmtree(template.folder, ignore_errors=True)
        raise


def create_template(spec: NewTemplate, templates_dir: Path) -> Template:
    """Probe, copy and describe a new template (its folder appears whole, atomically); preparing
    it is left to the caller (the admin does it in the background)."""
    if not TEMPLATE_ID_PATTERN.match(spec.template_id):
        raise OptionRejected(
            "template", N_("A template id is 1–40 lowercase letters, digits or dashes.")
        )
    final = templates_dir / spec.template_id
    if final.exists():
        raise OptionRejected(
            "template", N_("A template %(id)r already exists."), params={"id": spec.template_id}
        )
    info = probe_video(spec.video)
    if not OUTPUT_MIN_WIDTH <= spec.width <= OUTPUT_MAX_WIDTH:
        raise OptionRejected(
            "--width",
            N_("%(option)s must be from %(min)d to %(max)d pixels."),
            params={"min": OUTPUT_MIN_WIDTH, "max": OUTPUT_MAX_WIDTH},
        )
    if not 1 <= spec.fps <= OUTPUT_MAX_FPS:
        raise OptionRejected(
            "--fps", N_("%(option)s must be from 1 to %(max)d."), params={"max": OUTPUT_MAX_FPS}
        )
    if not 0 <= spec.start_s < info.duration_s:
        raise OptionRejected(
            "--start",
            N_("%(option)s must be within the video's %(seconds).1f s."),
            params={"seconds": info.duration_s},
        )
    available = info.duration_s - spec.start_s
    duration = spec.duration_s or min(DEFAULT_DURATION_SECONDS, available)
    if not 0.2 <= duration <= SOURCE_USED_SECONDS:
        raise OptionRejected(
            "--duration",
            N_("%(option)s must be from 0.2 to %(max)g seconds."),
            params={"max": SOURCE_USED_SECONDS},
        )
    duration = min(duration, available)
    if spec.frame is not None:
        _check_frame_png(spec.frame)

    width = spec.width - spec.width % 2
    height = output_height(width, info.width, info.height)
    margin = max(8, width // 20)
    box_y = height * 2 // 3
    source_name = "source" + SOURCE_EXTENSIONS.get(info.container, ".mp4")
    data: dict[str, Any] = {
        "name": spec.name or spec.template_id.replace("-", " ").capitalize(),
        "source": source_name,
        "caption_mode": "free",
        "captions": [],
        "trim": {"start": round(spec.start_s, 3), "duration": round(duration, 3)},
        "output": {"width": width, "fps": spec.fps, "loop": "forward", "speed": 1.0},
        "text": {
            "box": [margin, box_y, width - 2 * margin, height - box_y - margin // 2],
            "fill": "#ffffff",
            "stroke": "#000000",
            "stroke_width": 3,
            "align": "center",
            "max_lines": 2,
            "max_size": max(16, height // 7),
            "min_size": 12,
        },
    }
    if not spec.published:
        data["enabled"] = False
    templates_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".adding-{spec.template_id}-", dir=templates_dir))
    try:
        shutil.copyfile(spec.video, staging / source_name)
        if spec.frame is not None:
            shutil.copyfile(spec.frame, staging / "frame.png")
            data["frame"] = "frame.png"
        (staging / TEMPLATE_FILE).write_text(tomli_w.dumps(data), encoding="utf-8")
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return load_template(templates_dir, spec.template_id)
