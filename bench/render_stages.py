"""Where a full render's CPU and memory go, stage by stage, against the floor (issue 12).

``python -m bench.render_stages [--reps N] [--trees DIR ...] [TEMPLATE ...]`` prepares the
templates once (not timed; under ``bench/.cache/stages/``), then, for each renderer tree given
(a checkout's root; the default is this one) and each template, runs a fresh child pinned to one
core that warms up, renders the bench's first caption ``--reps`` times, and reports the median
CPU (the process's and its FFmpeg children's) of every stage of ``render_accepted``: layout,
compose, indices, GIF, poster, thumbnail, MP4, card; the floor (Pillow's LZW alone on the
render's crops + FFmpeg's MP4 alone + one copy of the frames), timed as the bench times it; and
the render's peak RSS above the process's resident size just before it (the high-water mark
is reset through ``/proc/self/clear_refs`` first), and FFmpeg's own peak. Trees run interleaved,
so "before" and "after" share the machine's load. The MP4 and GIF bytes of every tree are
compared (same frames in, same bytes out).

The child is ``python -m bench.render_stages --child TREE SPEC``, run with TREE first on
``PYTHONPATH`` (so each tree's own ``loopmark`` is the one measured; a tree without this file
needs a copy of it in its ``bench/``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_CORE = 0
STAGES_DIR = Path(__file__).resolve().parent / ".cache" / "stages"


def _cpu() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_high_water() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def _ffmpeg_own_peak_mib(video: Any, _frames: int, prepared: Any, normalised: str) -> float:
    """FFmpeg's own peak RSS for this render's MP4: ``ru_maxrss`` of a child carries its
    parent's high-water mark across fork and exec, so FFmpeg is run once more under
    ``/usr/bin/time``, whose own small footprint is all it inherits."""
    import tempfile

    from loopmark.renderer import render as r

    with tempfile.TemporaryDirectory(prefix="render-stages-") as tmp:
        report, wrapper = Path(tmp) / "peak.txt", Path(tmp) / "ffmpeg.sh"
        real = video.ffmpeg_exe()
        wrapper.write_text(f'#!/bin/sh\nexec /usr/bin/time -f %M -o "{report}" "{real}" "$@"\n')
        wrapper.chmod(0o755)
        composed = r.compose_frames(prepared, r.caption_layer(prepared, normalised))
        original = video.ffmpeg_exe
        video.ffmpeg_exe = lambda: str(wrapper)
        try:
            video.encode_mp4(composed, fps=prepared.fps)
        finally:
            video.ffmpeg_exe = original
        kib = int(report.read_text().split()[-1])
    return kib / 1024


def _rss_kib(status: Path, *, tool: str | None = None) -> int:
    """VmRSS from a status file; with ``tool``, 0 unless the process runs that program (a
    child between its spawn and its exec still shares this process's memory)."""
    try:
        text = status.read_text()
    except OSError:  # the tool just exited
        return 0
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    if tool is not None and fields.get("Name", "").strip() != tool:
        return 0
    return int(fields.get("VmRSS", "0 kB").split()[0])


class _Sampler:
    """The resident size of this process plus its children (FFmpeg), sampled every
    millisecond from a thread: the render's peak with FFmpeg's memory counted as it overlaps."""

    def __init__(self, tool: str) -> None:
        import threading

        self.tool = Path(tool).name[:15]  # the kernel's comm: the program's name, cut at 15
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = Path("/proc/self")
        while not self._stop.wait(0.001):
            total = _rss_kib(me / "status")
            for task in (me / "task").iterdir():
                try:
                    kids = (task / "children").read_text().split()
                except OSError:
                    continue
                total += sum(
                    _rss_kib(Path("/proc") / kid / "status", tool=self.tool) for kid in kids
                )
            self.peak_kib = max(self.peak_kib, total)


def child(tree: str, spec_path: str) -> dict[str, Any]:
    os.sched_setaffinity(0, {BENCH_CORE})
    import numpy as np
    from PIL import GifImagePlugin

    import loopmark
    from bench.cases import TemplateSpec, prepare_bench_template
    from bench.competitors import _lzw_images
    from loopmark.brand import demo_brand
    from loopmark.renderer import render as r
    from loopmark.renderer import video
    from loopmark.renderer.gif import frame_delays_cs
    from loopmark.renderer.process import ffmpeg_exe
    from loopmark.renderer.video import encode_mp4

    assert loopmark.__file__ is not None and loopmark.__file__.startswith(tree), loopmark.__file__
    spec = json.loads(Path(spec_path).read_text())
    template = TemplateSpec(**spec["template"])
    reps = int(spec["reps"])
    caption = spec["caption"]
    prepared = prepare_bench_template(template)
    normalised = r.accept_caption(prepared.template, caption)
    key = r.normalised_render_key(prepared.template, normalised)
    r.render(prepared, spec["warmup"])  # fonts, caches
    brand = demo_brand()

    # Peak RSS of one whole render above the resident size just before it.
    before_kib = _status_kib("VmRSS")
    _reset_high_water()
    result = r.render_accepted(prepared, normalised, key, brand=brand)
    render_peak_mib = (_status_kib("VmHWM") - before_kib) / 1024
    tools_peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    del result
    before_kib = _status_kib("VmRSS")
    with _Sampler(ffmpeg_exe()) as sampler:
        result = r.render_accepted(prepared, normalised, key, brand=brand)
    with_tools_mib = (sampler.peak_kib - before_kib) / 1024
    ffmpeg_own_mib = _ffmpeg_own_peak_mib(video, result.frames, prepared, normalised)
    del result

    stages: dict[str, list[float]] = {}

    def timed(name: str, start: float) -> float:
        now = _cpu()
        stages.setdefault(name, []).append(now - start)
        return now

    digests: dict[str, str] = {}
    for _ in range(reps):
        t0 = _cpu()
        result = r.render_accepted(prepared, normalised, key, brand=brand)
        timed("full render", t0)
        digests = {k: hashlib.sha256(getattr(result, k)).hexdigest()[:16]
                   for k in ("gif", "mp4", "poster", "thumbnail", "card")}  # fmt: skip
        del result
        # The same steps one by one (render_gif_stage and render_extras, unrolled).
        t = _cpu()
        layer = r.caption_layer(prepared, normalised)
        t = timed("layout", t)
        composed = r.compose_frames(prepared, layer)
        t = timed("compose", t)
        indices = r.caption_indices(prepared, composed, layer, r.RenderSettings())
        t = timed("indices", t)
        r.encode_prepared_gif(
            prepared,
            indices,
            frame_delays_cs(prepared.frame_count, prepared.fps),
            groups=prepared.frame_groups() if prepared.grouped else None,
        )
        t = timed("GIF encode", t)
        r.poster_jpeg(composed)
        t = timed("poster", t)
        r.render_thumbnail(prepared, composed[0])
        t = timed("thumbnail", t)
        encode_mp4(composed, fps=prepared.fps)
        t = timed("MP4", t)
        r.card_jpeg(prepared, composed[0], brand)
        t = timed("card", t)
        # The floor, as bench.competitors times it (the crops caught from an untimed encode).
        del indices
        calls = _lzw_images(prepared, caption)
        t = _cpu()
        for image, offset, params in calls:
            for _chunk in GifImagePlugin.getdata(image, offset, **params):
                pass
        t = timed("floor: LZW", t)
        encode_mp4(composed, fps=prepared.fps)
        t = timed("floor: MP4", t)
        np.array(prepared.frames)
        timed("floor: copy", t)
        del composed, calls
    medians = {name: statistics.median(values) for name, values in stages.items()}
    medians["floor"] = medians["floor: LZW"] + medians["floor: MP4"] + medians["floor: copy"]
    return {
        "frames": prepared.frame_count,
        "cpu": medians,
        "render_peak_above_baseline_mib": render_peak_mib,
        "baseline_mib": before_kib / 1024,
        "ffmpeg_peak_mib": tools_peak_mib,  # with the inherited high-water mark
        "ffmpeg_own_peak_mib": ffmpeg_own_mib,
        "render_with_ffmpeg_above_baseline_mib": with_tools_mib,
        "digests": digests,
    }


def _specs(templates: list[str], reps: int) -> list[Path]:
    from bench.cases import (
        CAPTIONS,
        CLIP_TEMPLATE_ID,
        DEFAULT_CLIP,
        DEMO_TEMPLATES_DIR,
        LONG_CLIP_DURATION_SECONDS,
        LONG_CLIP_LOOP,
        LONG_CLIP_TEMPLATE_ID,
        WARMUP_CAPTION,
        TemplateSpec,
        add_clip_template,
        prepare_bench_template,
    )

    STAGES_DIR.mkdir(parents=True, exist_ok=True)
    clip_dir = STAGES_DIR / "templates"
    prepared_dir = STAGES_DIR / "prepared"
    paths = []
    for tid in templates:
        if tid in (CLIP_TEMPLATE_ID, LONG_CLIP_TEMPLATE_ID):
            clip_dir.mkdir(exist_ok=True)
            if not (clip_dir / tid).is_dir():
                if tid == CLIP_TEMPLATE_ID:
                    add_clip_template(clip_dir, DEFAULT_CLIP)
                else:
                    add_clip_template(clip_dir, DEFAULT_CLIP, LONG_CLIP_TEMPLATE_ID,
                                      LONG_CLIP_DURATION_SECONDS, LONG_CLIP_LOOP)  # fmt: skip
            spec = TemplateSpec(tid, str(clip_dir), str(prepared_dir), "clip")
        else:
            spec = TemplateSpec(tid, str(DEMO_TEMPLATES_DIR), str(prepared_dir), "demo")
        prepare_bench_template(spec)
        path = STAGES_DIR / f"{tid}.json"
        case = {"template": spec.__dict__, "reps": reps, "caption": CAPTIONS[0][1],
                "warmup": WARMUP_CAPTION}  # fmt: skip
        path.write_text(json.dumps(case))
        paths.append(path)
    return paths


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.render_stages")
    parser.add_argument("--child", nargs=2, metavar=("TREE", "SPEC"))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1, help="children per tree and template")
    parser.add_argument("--trees", nargs="+", default=[str(Path(__file__).resolve().parents[1])])
    parser.add_argument("templates", nargs="*", default=["big-stretch", "wake-up", "bbb-clip-96"])
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0
    here = str(Path(__file__).resolve().parents[1])
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for spec in _specs(args.templates, args.reps):
        for _ in range(args.rounds):
            for tree in args.trees:
                proc = subprocess.run(
                    [sys.executable, "-m", "bench.render_stages", "--child", tree, str(spec)],
                    cwd=STAGES_DIR, capture_output=True, text=True, check=False,
                    env={**os.environ, "PYTHONPATH": os.pathsep.join([tree, here])},
                )  # fmt: skip
                if proc.returncode != 0:
                    print(proc.stderr[-3000:], file=sys.stderr)
                    return 1
                results.setdefault((spec.stem, tree), []).append(
                    json.loads(proc.stdout.strip().splitlines()[-1])
                )
    for (tid, tree), runs in results.items():
        cpu = {k: statistics.median(run["cpu"][k] for run in runs) for k in runs[0]["cpu"]}
        first = runs[0]
        print(f"\n{tid} ({first['frames']} frames) — {tree}")
        for name, value in cpu.items():
            print(f"  {name:<12} {value * 1000:8.1f} ms")
        print(f"  full ÷ floor  {cpu['full render'] / cpu['floor']:.2f}")
        peak = statistics.median(run["render_peak_above_baseline_mib"] for run in runs)
        print(
            f"  render peak RSS above baseline {peak:.0f} MiB (baseline "
            f"{first['baseline_mib']:.0f} MiB); FFmpeg's own peak "
            f"{first['ffmpeg_own_peak_mib']:.0f} MiB (ru_maxrss, with the inherited mark: "
            f"{first['ffmpeg_peak_mib']:.0f} MiB)"
        )
        both = statistics.median(run["render_with_ffmpeg_above_baseline_mib"] for run in runs)
        print(f"  render + FFmpeg resident together, peak above baseline {both:.0f} MiB")
        print(f"  digests {first['digests']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
