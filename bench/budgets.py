"""GIF size budgets (issue 12): GIF bytes per demo template and per phone-like clip against the
share targets' limits, and what a budget's steps (frames, then width) make of each under a few
tighter budgets: bytes, size, SSIM against the unquantised frames, CPU.

Run: ``python -m bench.budgets [--out FILE]`` (a few minutes on one core: it prepares each case
once, under bench/.cache/budgets/). Prints a markdown report; ``--out`` writes it too.

SSIM is scikit-image's, mean over the GIF's frames against the composed frames the GIF stands
for (every second one when frames were dropped, scaled with Lanczos when narrower): it measures
what each frame lost, not the motion lost with dropped frames.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from bench.cases import CACHE_DIR, DEFAULT_CLIP, DEMO_TEMPLATES_DIR
from bench.measure import gif_ssim
from loopmark.brand import demo_brand
from loopmark.renderer.authoring import NewTemplate, add_template
from loopmark.renderer.clip import CLIP_SOURCE_MAX_BYTES, clip_id, clip_template
from loopmark.renderer.prepare import PreparedTemplate, prepare_template
from loopmark.renderer.probe import probe_video
from loopmark.renderer.render import (
    GifStage,
    RenderSettings,
    accept_caption,
    compose_frames,
    normalised_render_key,
    render_gif_stage,
)
from loopmark.renderer.templates import Template, iter_template_ids, load_template
from loopmark.renderer.video import encode_mp4
from tests.renderer.hostile_videos import _ffmpeg

WORK_DIR = CACHE_DIR / "budgets"
CAPTION = "Coffee first, then the world keeps on turning"
CLIP_SECONDS = 3.0
MB = 1_000_000
# (limit in bytes, what it is): what we assume of each share target (README, "GIF size budgets").
LIMITS: tuple[tuple[int, str], ...] = (
    (5 * MB, "X mobile 5 MB"),
    (8 * MB, "our default 8 MB"),
    (10 * MB, "Discord free / email 10 MB"),
    (15 * MB, "X web 15 MB"),
    (16 * MB, "WhatsApp 16 MB"),
)
# Tighter budgets than any share target, to show the steps on every case.
TRY_BUDGETS = (2 * MB, 1 * MB, 500_000)


@dataclass(frozen=True)
class Case:
    name: str
    prepared: PreparedTemplate


@dataclass(frozen=True)
class Row:
    budget: int | None
    bytes: int
    frame_step: int
    frames: int
    width: int
    height: int
    fits: bool
    ssim: float | None
    cpu_s: float
    mp4_bytes: int = 0  # the render's MP4 (the same whatever the budget): first rows only


def phone_clip(folder: Path, *, portrait: bool) -> Path:
    """10 s of 1080p H.264 at 30 fps from the shared footage (looped), as a phone records it;
    portrait is 1080×1920 (the footage turned on its side)."""
    path = folder / f"phone-1080p-{'portrait' if portrait else 'landscape'}.mp4"
    if path.is_file():
        return path
    scale = "scale=1920:1080,transpose=1" if portrait else "scale=1920:1080"
    _ffmpeg(
        "-stream_loop", "2", "-i", f"file:{DEFAULT_CLIP}", "-t", "10", "-an",
        "-vf", f"{scale},fps=30", "-c:v", "libx264", "-preset", "veryfast",
        "-pix_fmt", "yuv420p", f"file:{path}",
    )  # fmt: skip
    return path


def clip_case(name: str, source: Path, base: Template) -> Case:
    """A visitor's clip as the upload path makes it: 3 s from 1 s in, the brand's frame."""
    info = probe_video(source, max_bytes=CLIP_SOURCE_MAX_BYTES)
    start = 1.0
    template = clip_template(
        base,
        template_id=clip_id(f"bench-{source.name}", start, CLIP_SECONDS),
        source=source,
        content_sha256=f"bench-{source.name}",
        start_s=start,
        duration_s=CLIP_SECONDS,
        source_width=info.width,
        source_height=info.height,
    )
    return Case(name, prepare_template(template, WORK_DIR / "prepared"))


def cases() -> list[Case]:
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    found = [
        Case(tid, prepare_template(load_template(DEMO_TEMPLATES_DIR, tid), WORK_DIR / "prepared"))
        for tid in iter_template_ids(DEMO_TEMPLATES_DIR)
    ]
    base = load_template(DEMO_TEMPLATES_DIR, "wake-up")
    landscape = phone_clip(WORK_DIR, portrait=False)
    portrait = phone_clip(WORK_DIR, portrait=True)
    found.append(clip_case("upload: 1080p landscape phone clip", landscape, base))
    found.append(clip_case("upload: 1080p portrait phone clip", portrait, base))
    # A brand template made 480 px wide from a portrait clip: 480×854, the biggest GIFs the
    # site can make (a visitor's portrait clip was this size before clips kept to 480 px tall).
    tall = NewTemplate(
        template_id="portrait-480", video=portrait, start_s=1.0, duration_s=CLIP_SECONDS,
        width=480, fps=12,
    )  # fmt: skip
    templates_dir = WORK_DIR / "templates"
    if (templates_dir / tall.template_id).is_dir():
        prepared = prepare_template(
            load_template(templates_dir, tall.template_id), WORK_DIR / "prepared"
        )
    else:
        prepared = add_template(tall, templates_dir, WORK_DIR / "prepared")
    found.append(Case("portrait template 480 px wide", prepared))
    return found


def render_row(
    prepared: PreparedTemplate, budget: int | None, caption: str = CAPTION
) -> tuple[Row, GifStage]:
    settings = RenderSettings(max_gif_bytes=budget)
    template = prepared.template
    if template.caption_mode == "presets":
        caption = template.captions[0]
    normalised = accept_caption(template, caption)
    key = normalised_render_key(template, normalised, settings)
    started = time.process_time()
    stage = render_gif_stage(prepared, normalised, key, settings=settings)
    cpu = time.process_time() - started
    outcome = stage.budget
    frame_step = outcome.frame_step if outcome else 1
    width = outcome.width if outcome else stage.width
    height = outcome.height if outcome else stage.height
    truth = _truth(compose_frames(prepared, stage.layer)[::frame_step], width, height)
    ssim, frames = gif_ssim(stage.gif, truth)
    row = Row(
        budget=budget,
        bytes=len(stage.gif),
        frame_step=frame_step,
        frames=frames,
        width=width,
        height=height,
        fits=outcome.fits if outcome else True,
        ssim=ssim,
        cpu_s=cpu,
    )
    return row, stage


def full_row(prepared: PreparedTemplate, caption: str = CAPTION) -> Row:
    """The render with no budget, and its MP4's bytes beside the GIF's."""
    row, stage = render_row(prepared, None, caption)
    mp4 = encode_mp4(compose_frames(prepared, stage.layer), fps=prepared.fps)
    return replace(row, mp4_bytes=len(mp4))


def _truth(frames: NDArray[np.uint8], width: int, height: int) -> list[NDArray[np.uint8]]:
    if frames.shape[2] == width:
        return list(frames)
    resample = Image.Resampling.LANCZOS
    return [np.asarray(Image.fromarray(f).resize((width, height), resample)) for f in frames]


def _mb(n: int) -> str:
    return f"{n / MB:.2f} MB"


def report(rows: dict[str, list[Row]], cases_: list[Case]) -> str:
    sizes = {c.name: c.prepared for c in cases_}
    lines = [
        "## GIF bytes against share targets' limits",
        "",
        f"Caption: “{CAPTION}” (a presets template: its first\ncaption). No budget; "
        "✓ = within the limit.",
        "",
        "| case | frames | size | GIF bytes | MP4 bytes | "
        + " | ".join(n for _, n in LIMITS)
        + " |",
        "|---|---:|---|---:|---:|" + "---|" * len(LIMITS),
    ]
    for name, case_rows in rows.items():
        full = case_rows[0]
        p = sizes[name]
        marks = " | ".join("✓" if full.bytes <= limit else "✗" for limit, _ in LIMITS)
        lines.append(
            f"| {name} | {p.frame_count} @ {p.fps} fps | {p.width}×{p.height} | "
            f"{_mb(full.bytes)} | {_mb(full.mp4_bytes)} | {marks} |"
        )
    lines += [
        "",
        "## What a budget makes of each (steps: every second frame, then 0.8× the width)",
        "",
        "| case | budget | GIF bytes | fits | frames kept | GIF size | SSIM | CPU to GIF |",
        "|---|---:|---:|---|---:|---|---:|---:|",
    ]
    for name, case_rows in rows.items():
        for row in case_rows:
            budget = "none" if row.budget is None else _mb(row.budget)
            ssim = "—" if row.ssim is None else f"{row.ssim:.4f}"
            kept = f"{row.frames} (1 in {row.frame_step})"
            lines.append(
                f"| {name} | {budget} | {_mb(row.bytes)} | {'yes' if row.fits else 'no'} | "
                f"{kept} | {row.width}×{row.height} | {ssim} | {row.cpu_s:.2f} s |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.budgets", description=__doc__)
    parser.add_argument("--out", type=Path, help="also write the markdown report here")
    args = parser.parse_args(argv)
    found = cases()
    rows: dict[str, list[Row]] = {}
    for case in found:
        # No budget, the demo brand's (what the site does), then the tighter ones.
        budgets = (demo_brand().max_gif_bytes, *TRY_BUDGETS)
        rows[case.name] = [full_row(case.prepared)]
        rows[case.name] += [render_row(case.prepared, b)[0] for b in budgets]
    text = report(rows, found)
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
