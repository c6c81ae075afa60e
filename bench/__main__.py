"""``python -m bench``: run the render benchmark, then the render-service benchmark, print their
tables and write bench/results.md."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench.cases import (
    CACHE_DIR,
    CAPTIONS,
    CLIP_TEMPLATE_ID,
    DEFAULT_CLIP,
    DEMO_TEMPLATES_DIR,
    GIFSKI_EXE,
    LONG_CLIP_DURATION_SECONDS,
    LONG_CLIP_LOOP,
    LONG_CLIP_TEMPLATE_ID,
    REPO_ROOT,
    CaseSpec,
    TemplateSpec,
    add_clip_template,
    build_case,
    find_tools,
    renderer_fingerprint,
)
from bench.child import PREPARE
from bench.competitors import CANDIDATES, ROWS
from bench.measure import MeasureFailed, run_child, score_gif
from bench.report import (
    CaseResult,
    PrepareResult,
    RowStats,
    floor_table,
    prepare_table,
    render_markdown,
    results_table,
    running_command,
    service_burst_table,
    service_eta_table,
    service_hits_table,
    service_section,
    service_verdicts,
    split_notes,
    targets_table,
    with_notes,
    with_service_section,
)
from bench.service import (
    DEFAULT_TEMPLATE_ID,
    QUICK_LOOKUPS,
    QUICK_RENDERS,
    ServiceBenchConfig,
    run_service_bench,
)

DEFAULT_REPS = 5
QUICK_REPS = 3
# Two captions a template keep `make bench` near ten minutes on two cores (gifski alone takes
# 5–7 s a run); --captions 3 adds the short Latin one.
DEFAULT_CAPTIONS = 2
WORK_DIR = CACHE_DIR / "run"
SERVICE_WORK_DIR = CACHE_DIR / "service"
RESULTS_MD = REPO_ROOT / "bench" / "results.md"
EXIT_BAD_INPUT = 2
EXIT_RENDERER_CHANGED = 1


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 template, 1 caption, 3 reps")
    parser.add_argument("--reps", type=int, help=f"repetitions (default {DEFAULT_REPS})")
    parser.add_argument("--captions", type=int, choices=range(1, len(CAPTIONS) + 1),
                        help=f"captions per template (default {DEFAULT_CAPTIONS})")  # fmt: skip
    parser.add_argument("--templates", nargs="+", metavar="ID",
                        help=f"template ids (default: every demo template, {CLIP_TEMPLATE_ID} and "
                             f"{LONG_CLIP_TEMPLATE_ID}); given, the clip templates run only when "
                             "named")  # fmt: skip
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP,
                        help="real clip for the extra template (skipped if missing)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS_MD, help="markdown results file")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--service-only",
        action="store_true",
        help="only the render-service bench (replaces its section of --out)",
    )
    which.add_argument("--no-service", action="store_true",
                       help="only the render bench")  # fmt: skip
    args = parser.parse_args(argv)
    if args.reps is not None and args.reps < 1:
        parser.error("--reps must be at least 1")
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def template_specs(args: argparse.Namespace, work: Path) -> list[TemplateSpec]:
    from loopmark.renderer.templates import iter_template_ids

    prepared_dir = str(work / "prepared")  # fresh, so preparation is measured cold
    clips = (CLIP_TEMPLATE_ID, LONG_CLIP_TEMPLATE_ID)
    ids = list(args.templates or iter_template_ids(DEMO_TEMPLATES_DIR))
    specs = [
        TemplateSpec(tid, str(DEMO_TEMPLATES_DIR), prepared_dir, "demo")
        for tid in ids
        if tid not in clips
    ]
    if args.quick:
        return specs[:1]
    wanted = [tid for tid in clips if args.templates is None or tid in args.templates]
    if wanted and not args.clip.is_file():
        log(f"no clip at {args.clip}: the real-clip template is skipped")
        wanted = []
    if wanted:
        templates_dir = work / "templates"
        templates_dir.mkdir(parents=True)
    if CLIP_TEMPLATE_ID in wanted:
        origin = add_clip_template(templates_dir, args.clip)
        specs.append(TemplateSpec(CLIP_TEMPLATE_ID, str(templates_dir), prepared_dir, origin))
    if LONG_CLIP_TEMPLATE_ID in wanted:
        origin = add_clip_template(
            templates_dir,
            args.clip,
            LONG_CLIP_TEMPLATE_ID,
            LONG_CLIP_DURATION_SECONDS,
            LONG_CLIP_LOOP,
        )
        specs.append(TemplateSpec(LONG_CLIP_TEMPLATE_ID, str(templates_dir), prepared_dir, origin))
    return specs


def prepare_once(spec: TemplateSpec, work: Path) -> PrepareResult:
    from bench.cases import prepare_bench_template

    spec_path = work / f"template-{spec.id}.json"
    spec_path.write_text(json.dumps(dataclasses.asdict(spec)))
    run = run_child(PREPARE, spec_path, work / "prepare" / spec.id)
    prepared = prepare_bench_template(spec)  # cached now
    return PrepareResult(
        template=spec.id,
        origin=spec.origin,
        frames=prepared.frame_count,
        width=prepared.width,
        height=prepared.height,
        fps=prepared.fps,
        seconds=run.rows[PREPARE][0],
        cpu=run.rows[PREPARE][1],
        peak_rss_mb=run.peak_rss_mb,
    )


def measure_case(case: CaseSpec, folder: Path, reps: int) -> CaseResult:
    rows = {name: RowStats() for name in ROWS}
    spec = folder / "case.json"
    for rep in range(reps):
        for candidate in CANDIDATES:
            run = run_child(candidate, spec, folder / "out" / f"rep{rep}" / candidate)
            if run.cpus != [0]:
                raise MeasureFailed(f"{candidate} ran on CPUs {run.cpus}, not pinned")
            for name, (seconds, cpu, gif) in run.rows.items():
                stats = rows[name]
                stats.seconds.append(seconds)
                stats.cpu.append(cpu)
                stats.peak_rss_mb.append(run.peak_rss_mb)
                stats.sizes.add(gif.stat().st_size)
                stats.gif = stats.gif or gif
        log(f"  rep {rep + 1}/{reps} done")
    return CaseResult(case=case, rows=rows)


def score_all(results: list[CaseResult]) -> None:
    """SSIM for every row's first GIF, after all timing, on every core (nothing is timed now)."""
    jobs = {}
    with ProcessPoolExecutor() as pool:
        for result in results:
            case_json = Path(result.case.frames_rgb).with_name("case.json")
            for name, stats in result.rows.items():
                if stats.gif is None:
                    raise MeasureFailed(f"{name} made no GIF for {case_json.parent}")
                jobs[(id(result), name)] = pool.submit(score_gif, stats.gif, case_json)
        for result in results:
            for name, stats in result.rows.items():
                stats.ssim, stats.frames, _ = jobs[(id(result), name)].result()


def run_service(args: argparse.Namespace, argv: list[str]) -> None:
    """The render-service bench; its section replaces any earlier one at the end of --out."""
    quick = {"lookups": QUICK_LOOKUPS, "aws_lookups": QUICK_LOOKUPS, "renders": QUICK_RENDERS}
    config = ServiceBenchConfig(
        templates_dir=str(DEMO_TEMPLATES_DIR),
        template_id=DEFAULT_TEMPLATE_ID,
        data_dir=str(WORK_DIR),  # its prepared/ is the render bench's: nothing prepared twice
        work_dir=str(SERVICE_WORK_DIR),
        **(quick if args.quick else {}),
    )
    results = run_service_bench(config, log=log)
    for table in (service_verdicts(results), service_hits_table(results),
                  service_burst_table(results), service_eta_table(results)):  # fmt: skip
        print("\n".join(table), end="\n\n")
    existing = args.out.read_text() if args.out.is_file() else ""
    args.out.write_text(
        with_service_section(existing, service_section(results, running_command(argv)))
    )
    log(f"wrote the render-service section of {args.out}")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    status = 0
    if not args.service_only:
        status = run_render_bench(args, argv)
        if status == EXIT_BAD_INPUT:
            return status
    if not args.no_service:
        run_service(args, argv)
    return status


def run_render_bench(args: argparse.Namespace, argv: list[str]) -> int:
    reps = args.reps or (QUICK_REPS if args.quick else DEFAULT_REPS)
    caption_count = 1 if args.quick else (args.captions or DEFAULT_CAPTIONS)
    if not GIFSKI_EXE.is_file():
        print(f"gifski not found at {GIFSKI_EXE}; `make bench` installs it", file=sys.stderr)
        return EXIT_BAD_INPUT
    started = time.perf_counter()
    shutil.rmtree(WORK_DIR, ignore_errors=True)
    WORK_DIR.mkdir(parents=True)
    tools = find_tools()
    fingerprint = renderer_fingerprint()
    prepared: list[PrepareResult] = []
    results: list[CaseResult] = []
    for spec in template_specs(args, WORK_DIR):
        log(f"{spec.id}: preparing (timed once, pinned)")
        prepared.append(prepare_once(spec, WORK_DIR))
        captions = CAPTIONS[: 1 if spec.id == LONG_CLIP_TEMPLATE_ID else caption_count]
        for label, caption in captions:
            folder = WORK_DIR / "cases" / spec.id / label.replace(" ", "-").replace("+", "")
            log(f"{spec.id} / {label}: {reps} repetitions of {', '.join(CANDIDATES)}")
            case = build_case(spec, tools, label, caption, folder)
            # The long case repeats less: `make bench` stays under 15 minutes on two cores.
            long_case = spec.id == LONG_CLIP_TEMPLATE_ID
            results.append(measure_case(case, folder, min(reps, QUICK_REPS) if long_case else reps))
    log("scoring SSIM")
    score_all(results)
    changed = renderer_fingerprint() != fingerprint
    markdown = render_markdown(
        command=running_command(argv),
        renderer=fingerprint,
        renderer_changed=changed,
        reps=reps,
        tools=tools,
        work=WORK_DIR,
        prepared=prepared,
        results=results,
        total_seconds=time.perf_counter() - started,
    )
    tables = (results_table(results, reps), targets_table(results), floor_table(results),
              prepare_table(prepared))  # fmt: skip
    for table in tables:
        print("\n".join(table), end="\n\n")
    previous = args.out.read_text() if args.out.is_file() else ""
    args.out.write_text(with_notes(markdown, split_notes(previous)[1]))
    log(f"wrote {args.out}")
    if changed:
        log("the renderer changed during the run: these numbers mix two versions; run it again")
        return EXIT_RENDERER_CHANGED
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
