"""Tests of the benchmark harness (run: ``.venv/bin/python -m pytest -q bench/test_bench.py``).

They check what the numbers rest on: the competitors see the same frames as ours (same count,
same order, boomerang included), SSIM and the frame-count check, the pin to one core, the peak RSS
reading and the PASS/FAIL logic. Nothing here asserts a duration.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench import report
from bench.__main__ import measure_case, score_all
from bench.cases import (
    GIFSKI_EXE,
    CaseSpec,
    TemplateSpec,
    Tools,
    build_case,
    find_tools,
    load_truth,
    prepare_bench_template,
)
from bench.child import peak_rss_mb
from bench.competitors import (
    FLOOR,
    GIFSKI,
    OURS_FULL,
    OURS_GIF,
    RECIPE_FRAMES,
    RECIPE_SOURCE,
    ROWS,
    Row,
    median_row,
    source_filtergraph,
)
from bench.measure import gif_ssim
from bench.report import CaseResult, RowStats

TINY_WIDTH_PX = 320  # wide enough for the warm-up caption at the minimum font size


def _gif(frames: list[np.ndarray]) -> bytes:
    images = [Image.fromarray(f).quantize(colors=16, dither=Image.Dither.NONE) for f in frames]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=80, loop=0)
    return out.getvalue()


def _flat_frames(count: int) -> list[np.ndarray]:
    # Few flat colours survive a GIF exactly, so the decoded frames equal the truth.
    frames = []
    for i in range(count):
        frame = np.zeros((24, 32, 3), np.uint8)
        frame[:, : 4 + i * 4] = (200, 40, 10 * i)
        frames.append(frame)
    return frames


def test_ssim_of_an_exact_gif_is_one_and_frames_are_counted() -> None:
    frames = _flat_frames(4)
    ssim, count = gif_ssim(_gif(frames), np.stack(frames))
    assert count == 4
    assert ssim == pytest.approx(1.0)


def test_ssim_is_none_when_the_frame_count_differs() -> None:
    frames = _flat_frames(4)
    ssim, count = gif_ssim(_gif(frames[:3]), np.stack(frames))
    assert (ssim, count) == (None, 3)


def test_peak_rss_reads_this_process() -> None:
    grown = np.ones(64 * 1024 * 1024, np.uint8)  # 64 MiB, touched
    assert peak_rss_mb() >= grown.size / 1024 / 1024


def _case(loop: str, brand: str | None, frame_count: int = 10) -> CaseSpec:
    tools = Tools(ffmpeg="ffmpeg", gifsicle="gifsicle", gifski="gifski")
    return CaseSpec(
        template=TemplateSpec("t", "/t", "/p", "demo"), tools=tools, label="x", caption="x",
        warmup_caption="w", width=160, height=90, fps=8, frame_count=frame_count,
        frames_rgb="/f", png_dir="/png", layer_png="/c.png", box_x=10, box_y=60,
        source="/s.mp4", start_s=0.0, duration_s=1.0, speed=0.8, loop=loop, brand_png=brand,
    )  # fmt: skip


def test_source_graph_for_a_boomerang_decodes_half_and_drops_the_ends() -> None:
    graph = source_filtergraph(_case("boomerang", "/b.png", frame_count=10), "palettegen")
    assert "setpts=PTS/0.8,fps=8,scale=160:90:flags=lanczos" in graph
    assert "trim=end_frame=6[v0]" in graph  # 6 forward + 4 back = 10
    assert "reverse,trim=start_frame=1:end_frame=5" in graph
    assert "[v1][2:v]overlay=10:60" in graph  # the caption is input 2 after the brand frame


def test_source_graph_without_a_brand_frame_takes_the_caption_as_input_one() -> None:
    graph = source_filtergraph(_case("forward", None), "[2:v]paletteuse")
    assert "[v0][1:v]overlay=10:60[v2]" in graph
    assert "reverse" not in graph
    assert graph.endswith("[v2][2:v]paletteuse")


def _stats(seconds: float, size: int, ssim: float, rss: float = 100.0) -> RowStats:
    return RowStats(
        seconds=[seconds], cpu=[seconds], peak_rss_mb=[rss], sizes={size}, ssim=ssim, frames=10
    )


def _result(ours_s: float, gifski_s: float, ours_size: int, ours_ssim: float) -> CaseResult:
    rows = {
        OURS_FULL: _stats(ours_s, ours_size, ours_ssim, rss=320.0),
        OURS_GIF: _stats(ours_s / 2, ours_size, ours_ssim),
        FLOOR: _stats(ours_s / 1.5, ours_size, ours_ssim),
        RECIPE_FRAMES: _stats(10.0, 2000, 0.9),
        RECIPE_SOURCE: _stats(10.0, 2000, 0.9),
        GIFSKI: _stats(gifski_s, 1000, 0.95),
    }
    return CaseResult(case=_case("forward", None), rows=rows)


def test_case_failures_name_each_missed_target() -> None:
    good = _result(ours_s=1.0, gifski_s=10.0, ours_size=900, ours_ssim=0.946)
    assert report.case_failures(good) == ["peak RSS"]  # 320 MB > 300
    bad = _result(ours_s=3.0, gifski_s=10.0, ours_size=1100, ours_ssim=0.94)
    assert report.case_failures(bad) == [
        "time vs gifski 1.7.1",
        "bytes vs gifski",
        "SSIM vs gifski",
        "peak RSS",
    ]


def test_targets_table_shows_gif_only_and_full_ratios() -> None:
    lines = report.targets_table([_result(3.0, 10.0, 900, 0.95)])
    row = lines[-1]
    assert "| 0.150 PASS · 0.300 FAIL |" in row  # gifski: 1.5 s and 3 s against 10 s
    assert "0.900 PASS" in row
    assert "320 MB FAIL" in row


def test_floor_table_shows_issue_12s_ratios() -> None:
    row = report.floor_table([_result(3.0, 100.0, 800, 0.96)])[-1]
    assert "| 0.800 PASS | +0.0100 PASS |" in row  # 800 ÷ 1000 bytes, 0.96 − 0.95
    assert "| 0.015 PASS |" in row  # GIF only 1.5 s of CPU against gifski's 100
    assert row.endswith("| 1.50 FAIL |")  # full 3 s ÷ floor 2 s
    worse = report.floor_table([_result(3.0, 10.0, 900, 0.94)])[-1]
    assert "0.900 FAIL" in worse and "-0.0100 FAIL" in worse and "0.150 FAIL" in worse


def test_full_over_floor_pairs_the_repetitions() -> None:
    # Each repetition's two sides are timed together; the medians' ratio (1.2 here) would pair
    # the second repetition's quick full render with the third's quick floor.
    full, floor = [1.1, 1.2, 3.0], [1.0, 2.6, 1.0]
    assert report.paired_ratio(full, floor) == pytest.approx(1.1)
    with pytest.raises(ValueError):
        report.paired_ratio([1.0], [1.0, 2.0])


def test_a_median_row_takes_each_measure_s_median() -> None:
    rows: list[Row] = [
        {"seconds": 3.0, "cpu": 0.2, "gif": "a.gif"},
        {"seconds": 1.0, "cpu": 0.9, "gif": "b.gif"},
        {"seconds": 2.0, "cpu": 0.3, "gif": "c.gif"},
    ]
    assert median_row(rows) == {"seconds": 2.0, "cpu": 0.3, "gif": "a.gif"}


@pytest.fixture
def tiny_template(tmp_path: Path) -> TemplateSpec:
    """A real template folder: a 2 s FFmpeg test pattern, a branding frame, a boomerang loop."""
    folder = tmp_path / "templates" / "tiny"
    folder.mkdir(parents=True)
    tools = find_tools()
    subprocess.run(
        [tools.ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi",
         "-i", "testsrc2=size=480x270:rate=25:duration=2", "-pix_fmt", "yuv420p",
         "-c:v", "libx264", "-preset", "ultrafast", str(folder / "source.mp4")],
        check=True,
    )  # fmt: skip
    brand = Image.new("RGBA", (320, 180), (0, 0, 0, 0))
    brand.paste((255, 0, 80, 255), (0, 0, 320, 12))
    brand.save(folder / "frame.png")
    (folder / "template.toml").write_text(
        'source = "source.mp4"\nframe = "frame.png"\n[trim]\nstart = 0.2\nduration = 1.0\n'
        f'[output]\nwidth = {TINY_WIDTH_PX}\nfps = 8\nloop = "boomerang"\nspeed = 0.8\n'
    )
    return TemplateSpec("tiny", str(tmp_path / "templates"), str(tmp_path / "prepared"), "test")


def test_every_candidate_makes_the_same_frames_on_one_core(
    tiny_template: TemplateSpec, tmp_path: Path
) -> None:
    assert GIFSKI_EXE.is_file(), "gifski comes from npm: `make test` and `make bench` install it"
    case = build_case(tiny_template, find_tools(), "emoji", "Hi 🐰 你好", tmp_path / "case")
    result = measure_case(case, tmp_path / "case", reps=1)  # raises unless pinned to core 0
    score_all([result])
    truth = load_truth(case)
    assert len(truth) == case.frame_count == 14  # 8 forward + 6 back
    assert set(result.rows) == set(ROWS)
    for name in ROWS:
        stats = result.rows[name]
        assert stats.frames == case.frame_count, name
        assert stats.ssim is not None and stats.ssim > 0.7, name
        assert min(stats.sizes) > 0
        assert max(stats.peak_rss_mb) > 1
        assert min(stats.cpu) > 0 and min(stats.seconds) > 0, name
    floor, full = result.rows[FLOOR].cpu[0], result.rows[OURS_FULL].cpu[0]
    assert floor < full  # the floor is a part of what the full render does
    # The recipe from source rebuilds the truth itself; in the right order its SSIM stays close
    # to the recipe on the truth's own frames (a reversed or shifted boomerang would not).
    frames_ssim = result.rows[RECIPE_FRAMES].ssim
    source_ssim = result.rows[RECIPE_SOURCE].ssim
    assert frames_ssim is not None and source_ssim is not None
    assert source_ssim > frames_ssim - 0.1


def test_a_presets_template_is_prepared_as_served_and_takes_free_captions(
    tiny_template: TemplateSpec,
) -> None:
    """The bench measures the palette the site serves: a template of presets without emoji keeps
    no emoji colours (another version than in free mode), yet takes the bench's own captions."""
    from loopmark.renderer.caption_palette import EMOJI_COLOURS
    from loopmark.renderer.templates import load_template

    toml = Path(tiny_template.templates_dir) / "tiny" / "template.toml"
    toml.write_text('caption_mode = "presets"\ncaptions = ["Plot twist"]\n' + toml.read_text())
    served = load_template(Path(tiny_template.templates_dir), "tiny")
    assert served.caption_mode == "presets" and not served.draws_emoji
    prepared = prepare_bench_template(tiny_template)
    assert prepared.template.caption_mode == "free"
    assert prepared.folder.name.startswith(served.version)
    assert prepared.template.version != served.version
    assert not {tuple(c) for c in prepared.palette.tolist()} >= set(EMOJI_COLOURS)


def test_named_templates_run_the_clip_templates_only_when_named(tmp_path: Path) -> None:
    from bench.__main__ import parse_args, template_specs

    missing = str(tmp_path / "no-clip.mp4")
    args = parse_args(["--templates", "big-stretch", "bbb-clip", "--clip", missing])
    assert [spec.id for spec in template_specs(args, tmp_path)] == ["big-stretch"]
    assert not (tmp_path / "templates").exists()  # no clip template is made when none runs
    args = parse_args(["--templates", "wake-up", "big-stretch"])
    assert [spec.id for spec in template_specs(args, tmp_path)] == ["wake-up", "big-stretch"]
