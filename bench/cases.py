"""The benchmark's cases: which templates and captions, and the frames every candidate starts from.

The parent process builds each case once (not timed): the truth frames (the template's prepared
frames with the caption blended in, exactly what ``compose_frames`` gives), the same frames as raw
RGB and as PNG files, the caption layer as a PNG, and a JSON spec the pinned child reads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_TEMPLATES_DIR = REPO_ROOT / "templates_video"
CACHE_DIR = REPO_ROOT / "bench" / ".cache"
GIFSKI_EXE = CACHE_DIR / "node_modules" / "gifski" / "bin" / "debian" / "gifski"
DEFAULT_CLIP = REPO_ROOT.parent / "shared" / "clips" / "bigbuckbunny.mp4"
CLIP_TEMPLATE_ID = "bbb-clip"
# 96 frames at 480×270, the long case of issue 12's floor target (one caption: gifski takes
# about 9 s of CPU a run on it). The shared clip lasts 5.3 s, so it is a boomerang of 4.1 s
# (49 frames forward, 47 back).
LONG_CLIP_TEMPLATE_ID = "bbb-clip-96"
LONG_CLIP_DURATION_SECONDS = 4.1
LONG_CLIP_LOOP = "boomerang"
# The clip template the issue asks for: a plain trim of the real clip, no branding frame.
CLIP_START_SECONDS = 1.0
CLIP_DURATION_SECONDS = 3.0
CLIP_WIDTH_PX = 480
CLIP_FPS = 12
PNG_COMPRESS_LEVEL = 1  # gifski decodes these in its timed run; level 1 keeps that cheap and fair

# The most demanding first: the default run takes the first two, --quick the first.
CAPTIONS: tuple[tuple[str, str], ...] = (
    ("two lines", "Coffee first, then the world keeps on turning"),
    ("emoji + non-Latin", "Привет 🐰 مرحبا 你好"),
    ("short Latin", "Hello from Loopmark"),
)
# The service renders in a warm process: this caption loads every fallback font (emoji, Cyrillic,
# Arabic, CJK) and warms the caches before anything is timed.
WARMUP_CAPTION = "Warm-up 🙂 Ж ب 字"


@dataclass(frozen=True)
class Tools:
    ffmpeg: str
    gifsicle: str
    gifski: str


@dataclass(frozen=True)
class TemplateSpec:
    """Where a template lives and where its prepared artifacts go."""

    id: str
    templates_dir: str
    prepared_dir: str
    origin: str  # how the bench obtained it, for the report


@dataclass(frozen=True)
class CaseSpec:
    """One template × caption: everything a child process needs, as plain JSON-able values."""

    template: TemplateSpec
    tools: Tools
    label: str
    caption: str
    warmup_caption: str
    width: int
    height: int
    fps: int
    frame_count: int
    frames_rgb: str  # raw RGB24, frame after frame (the truth)
    png_dir: str  # the truth as numbered PNG files
    layer_png: str  # the caption layer, RGBA, the size of the text box
    box_x: int
    box_y: int
    source: str
    start_s: float
    duration_s: float
    speed: float
    loop: str
    brand_png: str | None

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self), ensure_ascii=False, indent=2))

    @classmethod
    def load(cls, path: Path) -> CaseSpec:
        data: dict[str, Any] = json.loads(path.read_text())
        data["template"] = TemplateSpec(**data["template"])
        data["tools"] = Tools(**data["tools"])
        return cls(**data)


def renderer_fingerprint() -> str:
    """Versions and a hash of the renderer's sources, to tell which code the numbers belong to.

    The tree is edited while the bench runs; a fingerprint that differs at the end means the
    numbers mix two renderers.
    """
    from loopmark.renderer.prepare import PREPARE_VERSION
    from loopmark.renderer.render import RENDERER_VERSION

    digest = hashlib.sha256()
    for path in sorted((REPO_ROOT / "loopmark" / "renderer").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return (
        f"renderer {RENDERER_VERSION}, prepare {PREPARE_VERSION}, "
        f"sources sha256 {digest.hexdigest()[:12]}"
    )


def find_tools() -> Tools:
    from loopmark.renderer.process import ffmpeg_exe, gifsicle_exe

    return Tools(ffmpeg=ffmpeg_exe(), gifsicle=gifsicle_exe(), gifski=str(GIFSKI_EXE))


def add_clip_template(
    templates_dir: Path,
    clip: Path,
    template_id: str = CLIP_TEMPLATE_ID,
    duration_s: float = CLIP_DURATION_SECONDS,
    loop: str = "forward",
) -> str:
    """Make the clip template in ``templates_dir``; returns how it was made (for the report).

    The CLI's ``templates add`` is the real path an admin takes; when it is not there (yet), the
    bench writes the equivalent template.toml itself.
    """
    loopmark_cli = Path(sys.executable).with_name("loopmark")
    argv = [
        str(loopmark_cli), "templates", "add", template_id, "--video", str(clip),
        "--start", f"{CLIP_START_SECONDS:g}", "--duration", f"{duration_s:g}",
        "--width", str(CLIP_WIDTH_PX), "--fps", str(CLIP_FPS),
        "--name", "Big Buck Bunny (real clip)",
    ]  # fmt: skip
    env = {**os.environ, "LOOPMARK_TEMPLATES_DIR": str(templates_dir)}
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    toml = templates_dir / template_id / "template.toml"
    if proc.returncode == 0 and toml.is_file():
        if loop != "forward":  # the command has no --loop: the admin would edit the file
            toml.write_text(toml.read_text().replace('loop = "forward"', f'loop = "{loop}"', 1))
            return "`loopmark templates add`, then `loop` edited"
        return "`loopmark templates add`"
    folder = templates_dir / template_id
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.copyfile(clip, folder / "source.mp4")
    (folder / "template.toml").write_text(
        "\n".join(
            [
                'name = "Big Buck Bunny (real clip)"',
                'source = "source.mp4"',
                'credit = "Big Buck Bunny © Blender Foundation, CC-BY 3.0"',
                "[trim]",
                f"start = {CLIP_START_SECONDS}",
                f"duration = {duration_s}",
                "[output]",
                f"width = {CLIP_WIDTH_PX}",
                f"fps = {CLIP_FPS}",
                f'loop = "{loop}"',
                "",
            ]
        )
    )
    return "template.toml written by the bench (`loopmark templates add` unavailable)"


def load_bench_template(spec: TemplateSpec) -> Any:
    """The template with free captions: a preset-only template must still take the bench's
    captions. Prepare it with ``prepare_bench_template``, not as it is: free captions may hold
    emoji, which changes its palette (and its version)."""
    from loopmark.renderer.templates import load_template

    template = load_template(Path(spec.templates_dir), spec.id)
    return dataclasses.replace(template, caption_mode="free")


def prepare_bench_template(spec: TemplateSpec) -> Any:
    """The template prepared as the site prepares it (a preset-only template whose captions
    hold no emoji keeps no palette entries for them), then given free captions
    (``load_bench_template``) to take the bench's, none of which has an emoji."""
    from loopmark.renderer.prepare import prepare_template
    from loopmark.renderer.templates import load_template

    served = load_template(Path(spec.templates_dir), spec.id)
    prepared = prepare_template(served, Path(spec.prepared_dir))
    return dataclasses.replace(prepared, template=load_bench_template(spec))


def build_case(
    template_spec: TemplateSpec, tools: Tools, label: str, caption: str, folder: Path
) -> CaseSpec:
    """Write the case's inputs under ``folder`` and return its spec (the parent does this once)."""
    import numpy as np
    from PIL import Image

    from loopmark.renderer.render import caption_layer, compose_frames

    prepared = prepare_bench_template(template_spec)
    template = prepared.template
    layer = caption_layer(prepared, caption)
    truth = compose_frames(prepared, layer)
    folder.mkdir(parents=True, exist_ok=True)
    frames_rgb = folder / "frames.rgb"
    np.ascontiguousarray(truth).tofile(frames_rgb)
    png_dir = folder / "png"
    png_dir.mkdir(exist_ok=True)
    for i, frame in enumerate(truth):
        Image.fromarray(frame).save(png_dir / f"{i:04d}.png", compress_level=PNG_COMPRESS_LEVEL)
    layer_png = folder / "caption.png"
    Image.fromarray(layer, "RGBA").save(layer_png)
    case = CaseSpec(
        template=template_spec,
        tools=tools,
        label=label,
        caption=caption,
        warmup_caption=WARMUP_CAPTION,
        width=prepared.width,
        height=prepared.height,
        fps=prepared.fps,
        frame_count=prepared.frame_count,
        frames_rgb=str(frames_rgb),
        png_dir=str(png_dir),
        layer_png=str(layer_png),
        box_x=prepared.box.x,
        box_y=prepared.box.y,
        source=str(template.source),
        start_s=template.start_s,
        duration_s=template.duration_s,
        speed=template.speed,
        loop=template.loop,
        brand_png=str(template.frame) if template.frame is not None else None,
    )
    case.save(folder / "case.json")
    return case


def load_truth(case: CaseSpec) -> Any:
    """The unquantised frames with the caption, shape (frames, height, width, 3)."""
    import numpy as np

    raw = np.fromfile(case.frames_rgb, dtype=np.uint8)
    return raw.reshape(case.frame_count, case.height, case.width, 3)
