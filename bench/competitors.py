"""The candidates, as run inside the pinned child: ours, ours + gifsicle, FFmpeg's recipe, gifski.

Each candidate reads its inputs first (not timed), then times only its own work with
a ``Clock`` (wall-clock, and CPU of the process and the tools it waited for), writes the GIFs it
made into ``out_dir`` and returns one ``Row`` per line of the results table. Our renderer gives
four rows from one warm process: the whole per-caption render (GIF, MP4, poster, share card), its
GIF-only part (what every competitor makes), the GIF-only part with a ``gifsicle -O3`` pass, and
the floor: Pillow's LZW alone on our frame crops + FFmpeg's MP4 alone + one copy of the frames.

Competitors import nothing from Loopmark or numpy, so their peak memory is their tools', not ours.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

from bench.cases import CaseSpec, TemplateSpec, prepare_bench_template

OURS_FULL = "ours: full render"
OURS_GIF = "ours: GIF only"
OURS_GIFSICLE = "ours + gifsicle -O3"
RECIPE_FRAMES = "recipe from frames"
RECIPE_SOURCE = "recipe from source"
GIFSKI = "gifski 1.7.1"
FLOOR = "floor: LZW + MP4 + one copy"
PREPARE = "prepare"


# The full render and the floor are each timed this many times in a repetition, in turn, and
# their medians kept: one render's CPU scatters by a tenth or more (FFmpeg's start-up, caches),
# and full ÷ floor, a ratio of two such single readings, moved by 0.3 from run to run.
FULL_AND_FLOOR_TIMES = 3


class Row(TypedDict):
    seconds: float  # wall-clock
    cpu: float  # CPU seconds of this process and the tools it waited for
    gif: str  # the GIF this row made (several rows may share one; the floor's is ours)


class Clock:
    """Wall-clock and CPU (this process's and its waited-for children's) since it started."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), _cpu()

    def row(self, gif: Path | str) -> Row:
        return {"seconds": time.perf_counter() - self.wall, "cpu": _cpu() - self.cpu,
                "gif": str(gif)}  # fmt: skip

    def add(self, other: Row, gif: Path | str) -> Row:
        """This clock's reading plus another row's (pieces measured apart)."""
        mine = self.row(gif)
        return {"seconds": mine["seconds"] + other["seconds"],
                "cpu": mine["cpu"] + other["cpu"], "gif": str(gif)}  # fmt: skip


def _cpu() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


class CandidateFailed(Exception):
    """A candidate's tool failed, or our two GIF paths disagreed: the bench stops, saying why."""


def _run(argv: list[str], stdin: bytes | None = None) -> None:
    proc = subprocess.run(argv, input=stdin, capture_output=True, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace")[-2000:]
        raise CandidateFailed(f"{Path(argv[0]).name} exited {proc.returncode}: {tail}")


# --- ours -----------------------------------------------------------------------------------


def _prepared(case: CaseSpec) -> Any:
    return prepare_bench_template(case.template)


def _ours_gif(prepared: Any, caption: str, gifsicle_level: str) -> bytes:
    """render()'s GIF path and nothing else: policy, layer, compose, quantise, encode, gifsicle.

    Built from render.py's own steps; ``ours`` checks it gives render()'s very bytes.
    """
    from loopmark.renderer.gif import frame_delays_cs, gifsicle_optimise
    from loopmark.renderer.render import (
        RenderSettings,
        accept_caption,
        caption_indices,
        caption_layer,
        compose_frames,
        encode_prepared_gif,
    )

    settings = RenderSettings(gifsicle_level=gifsicle_level)
    normalised = accept_caption(prepared.template, caption)
    layer = caption_layer(prepared, normalised)
    composed = compose_frames(prepared, layer)
    indices = caption_indices(prepared, composed, layer, settings)
    delays = frame_delays_cs(prepared.frame_count, prepared.fps)
    groups = prepared.frame_groups() if prepared.grouped else None
    gif = encode_prepared_gif(prepared, indices, delays, groups=groups)
    return gifsicle_optimise(gif, settings.gifsicle_level)


def _lzw_images(prepared: Any, caption: str) -> list[tuple[Any, tuple[int, int], dict[str, Any]]]:
    """The frame crops our encoder hands Pillow's LZW, with their offsets and options (caught
    from one untimed encode), so the floor times the LZW alone on exactly those crops."""
    from PIL import GifImagePlugin, Image

    calls: list[tuple[Any, tuple[int, int], dict[str, Any]]] = []
    real = GifImagePlugin.getdata

    def spy(im: Image.Image, offset: tuple[int, int] = (0, 0), **params: Any) -> list[bytes]:
        calls.append((im.copy(), offset, params))
        return real(im, offset, **params)

    # Our encoder (loopmark.renderer.gif) calls it through the module: the same module object.
    GifImagePlugin.getdata = spy
    try:
        _ours_gif(prepared, caption, "")
    finally:
        GifImagePlugin.getdata = real
    return calls


def _floor(prepared: Any, caption: str, gif: Path) -> Row:
    """What no renderer of these outputs can avoid: Pillow's LZW on our crops, FFmpeg's MP4 of
    the composed frames, and one copy of the frames (timed apart, added up)."""
    import numpy as np
    from PIL import GifImagePlugin

    from loopmark.renderer.render import caption_layer, compose_frames
    from loopmark.renderer.video import encode_mp4

    images = _lzw_images(prepared, caption)
    composed = compose_frames(prepared, caption_layer(prepared, caption))
    clock = Clock()
    for image, offset, params in images:
        for _chunk in GifImagePlugin.getdata(image, offset, **params):
            pass
    lzw = clock.row(gif)
    clock = Clock()
    encode_mp4(composed, fps=prepared.fps)
    mp4 = clock.row(gif)
    clock = Clock()
    np.array(prepared.frames)
    copy = clock.add(lzw, gif)
    return {"seconds": copy["seconds"] + mp4["seconds"], "cpu": copy["cpu"] + mp4["cpu"],
            "gif": str(gif)}  # fmt: skip


def median_row(rows: list[Row]) -> Row:
    """The median wall and CPU seconds of rows timing the same work (the first one's GIF)."""
    return {"seconds": statistics.median(r["seconds"] for r in rows),
            "cpu": statistics.median(r["cpu"] for r in rows), "gif": rows[0]["gif"]}  # fmt: skip


def ours(case: CaseSpec, out_dir: Path) -> dict[str, Row]:
    """Warm up, then time the whole render and the floor (LZW + MP4 + one copy of the frames)
    in turn FULL_AND_FLOOR_TIMES times (their medians), the GIF-only part, and that part with
    gifsicle -O3."""
    from loopmark.renderer.render import render

    prepared = _prepared(case)
    render(prepared, case.warmup_caption)
    plain_path, optimised_path = out_dir / "ours.gif", out_dir / "ours-O3.gif"
    fulls, floors = [], []
    for _ in range(FULL_AND_FLOOR_TIMES):  # in turn, so both see the same moments
        clock = Clock()
        result = render(prepared, case.caption)
        fulls.append(clock.row(plain_path))
        floors.append(_floor(prepared, case.caption, plain_path))
    full = median_row(fulls)
    clock = Clock()
    gif = _ours_gif(prepared, case.caption, "")
    gif_only = clock.row(plain_path)
    clock = Clock()
    optimised = _ours_gif(prepared, case.caption, "-O3")
    gifsicle = clock.row(optimised_path)
    if gif != result.gif:
        raise CandidateFailed("the GIF-only path does not give render()'s bytes")
    plain_path.write_bytes(gif)
    optimised_path.write_bytes(optimised)
    return {
        OURS_FULL: full,
        OURS_GIF: gif_only,
        OURS_GIFSICLE: gifsicle,
        FLOOR: median_row(floors),
    }


def prepare(spec: TemplateSpec, out_dir: Path) -> dict[str, Row]:
    """A template's one-off preparation (decode, brand, palette, map, stabilise, preview MP4)."""
    clock = Clock()
    prepared = prepare_bench_template(spec)
    return {PREPARE: clock.row(prepared.folder)}


# --- the standard recipe ------------------------------------------------------------------------


def _ffmpeg(case: CaseSpec, *args: str) -> list[str]:
    return [case.tools.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", *args]


def recipe_frames_argvs(
    case: CaseSpec, palette: Path, unoptimised: Path, out: Path
) -> list[list[str]]:
    """Pass 1 palettegen, pass 2 paletteuse (both read the raw frames on stdin), gifsicle -O3."""
    raw = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{case.width}x{case.height}",
           "-r", str(case.fps), "-i", "pipe:0"]  # fmt: skip
    return [
        _ffmpeg(case, *raw, "-vf", "palettegen", "-y", f"file:{palette}"),
        _ffmpeg(case, *raw, "-i", f"file:{palette}", "-lavfi", "paletteuse",
                "-y", f"file:{unoptimised}"),
        [case.tools.gifsicle, "--no-warnings", "-O3", str(unoptimised), "-o", str(out)],
    ]  # fmt: skip


def recipe_frames(case: CaseSpec, out_dir: Path) -> dict[str, Row]:
    """Two-pass palettegen → paletteuse (FFmpeg's defaults) on the same raw frames, gifsicle -O3."""
    frames = Path(case.frames_rgb).read_bytes()
    out = out_dir / "recipe-frames.gif"
    with tempfile.TemporaryDirectory(prefix="bench-recipe-") as tmp:
        palettegen, paletteuse, gifsicle = recipe_frames_argvs(
            case, Path(tmp) / "palette.png", Path(tmp) / "ffmpeg.gif", out
        )
        clock = Clock()
        _run(palettegen, frames)
        _run(paletteuse, frames)
        _run(gifsicle)
        row = clock.row(out)
    return {RECIPE_FRAMES: row}


def source_filtergraph(case: CaseSpec, tail: str) -> str:
    """What a naive service runs per request: decode, trim, retime, scale, loop, brand, caption.

    Mirrors the template's preparation (same trim, retime, fps and lanczos scale as
    ``decode_frames``, the frame PNG scaled over the whole picture, the loop style) and overlays
    the caption layer at its box, with FFmpeg's default overlay (it blends in yuv420). ``tail``
    ends the graph: ``palettegen``, or ``[N:v]paletteuse`` with the palette as input N.
    """
    w, h = case.width, case.height
    # Boomerang plays n frames forward and n - 2 back (the ends once): n = (count + 2) / 2.
    decoded = (case.frame_count + 2) // 2 if case.loop == "boomerang" else case.frame_count
    chain = [
        f"[0:v]setpts=PTS/{case.speed:g},fps={case.fps},scale={w}:{h}:flags=lanczos,setsar=1,"
        f"trim=end_frame={decoded}[v0]"
    ]
    current = "v0"
    if case.brand_png is not None:
        chain.append(f"[1:v]scale={w}:{h}:flags=lanczos[brand]")
        chain.append(f"[{current}][brand]overlay=0:0[v1]")
        current = "v1"
    caption_input = 2 if case.brand_png is not None else 1
    chain.append(f"[{current}][{caption_input}:v]overlay={case.box_x}:{case.box_y}[v2]")
    current = "v2"
    if case.loop == "reverse":
        chain.append(f"[{current}]reverse[v3]")
        current = "v3"
    elif case.loop == "boomerang":
        chain.append(f"[{current}]split[fwd][back]")
        chain.append(f"[back]reverse,trim=start_frame=1:end_frame={decoded - 1}[rev]")
        chain.append(f"[fwd][rev]concat=n=2:v=1:a=0,setpts=N/({case.fps}*TB)[v3]")
        current = "v3"
    chain.append(f"[{current}]{tail}")
    return ";".join(chain)


def recipe_source_argvs(
    case: CaseSpec, palette: Path, unoptimised: Path, out: Path
) -> list[list[str]]:
    """Pass 1 and pass 2 each decode the source again (as the recipe does), then gifsicle -O3."""
    inputs = ["-ss", f"{case.start_s:.3f}", "-t", f"{case.duration_s * case.speed:.3f}",
              "-i", f"file:{case.source}"]  # fmt: skip
    if case.brand_png is not None:
        inputs += ["-i", f"file:{case.brand_png}"]
    inputs += ["-i", f"file:{case.layer_png}"]
    palette_input = 3 if case.brand_png is not None else 2
    pass1 = source_filtergraph(case, "palettegen")
    pass2 = source_filtergraph(case, f"[{palette_input}:v]paletteuse")
    return [
        _ffmpeg(case, *inputs, "-filter_complex", pass1, "-an", "-y", f"file:{palette}"),
        _ffmpeg(case, *inputs, "-i", f"file:{palette}", "-filter_complex", pass2, "-an",
                "-y", f"file:{unoptimised}"),
        [case.tools.gifsicle, "--no-warnings", "-O3", str(unoptimised), "-o", str(out)],
    ]  # fmt: skip


def recipe_source(case: CaseSpec, out_dir: Path) -> dict[str, Row]:
    """The same recipe from the template's source video, as if nothing were prepared."""
    out = out_dir / "recipe-source.gif"
    with tempfile.TemporaryDirectory(prefix="bench-source-") as tmp:
        argvs = recipe_source_argvs(case, Path(tmp) / "palette.png", Path(tmp) / "ffmpeg.gif", out)
        clock = Clock()
        for argv in argvs:
            _run(argv)
        row = clock.row(out)
    return {RECIPE_SOURCE: row}


# --- gifski ---------------------------------------------------------------------------------------


def gifski_argv(case: CaseSpec, out: Path) -> list[str]:
    """gifski at the template's frame rate on the PNG frames, defaults otherwise (quality 90)."""
    pngs = sorted(str(p) for p in Path(case.png_dir).glob("*.png"))
    return [case.tools.gifski, "--quiet", "--fps", str(case.fps), "-o", str(out), *pngs]


def gifski(case: CaseSpec, out_dir: Path) -> dict[str, Row]:
    out = out_dir / "gifski.gif"
    argv = gifski_argv(case, out)
    clock = Clock()
    _run(argv)
    return {GIFSKI: clock.row(out)}


Candidate = Callable[[CaseSpec, Path], dict[str, Row]]
# Run in this order within every repetition (A B C D, A B C D, …).
CANDIDATES: dict[str, Candidate] = {
    "ours": ours,
    "recipe-frames": recipe_frames,
    "recipe-source": recipe_source,
    "gifski": gifski,
}
# The rows of the results table, in order.
ROWS = (OURS_FULL, OURS_GIF, OURS_GIFSICLE, FLOOR, RECIPE_FRAMES, RECIPE_SOURCE, GIFSKI)
