"""GIF size budgets: real renders over a budget step down (frames, then width) until they fit,
the same inputs give the same bytes, a render within its budget is untouched, and one that
cannot fit keeps its smallest step, recorded as not fitting."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence

from loopmark.renderer.authoring import NewTemplate, add_template
from loopmark.renderer.budget import (
    BUDGET_WIDTH_STEPS,
    BudgetStep,
    budget_steps,
    scaled_height,
    stepped_delays,
)
from loopmark.renderer.gif import frame_delays_cs
from loopmark.renderer.prepare import PreparedTemplate
from loopmark.renderer.quality import ssim
from loopmark.renderer.render import (
    RenderSettings,
    caption_layer,
    compose_frames,
    render,
    render_key,
)
from loopmark.renderer.templates import OUTPUT_MIN_WIDTH

CAPTION = "Budget day"


@pytest.fixture(scope="module")
def small12(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> PreparedTemplate:
    """A 160 px, 12 fps, one-second template: frames may be halved (6 fps is still smooth).
    In a folder of its own: the session's shared one holds exactly ``small`` for other tests."""
    folder = tmp_path_factory.mktemp("budget")
    spec = NewTemplate(
        template_id="small12", video=clip, start_s=1.0, duration_s=1.0, width=160, fps=12
    )
    return add_template(spec, folder / "templates", folder / "prepared")


def gif_frames(gif: bytes) -> tuple[list[np.ndarray], list[int], tuple[int, int]]:
    """Every frame of a GIF as RGB, each frame's duration in ms, and the GIF's size."""
    with Image.open(io.BytesIO(gif)) as image:
        frames, durations = [], []
        for frame in ImageSequence.Iterator(image):
            frames.append(np.asarray(frame.convert("RGB")))
            durations.append(int(frame.info["duration"]))
        return frames, durations, image.size


def with_budget(prepared: PreparedTemplate, max_gif_bytes: int | None) -> PreparedTemplate:
    """The prepared template with a template.toml-style budget of its own."""
    template = dataclasses.replace(prepared.template, max_gif_bytes=max_gif_bytes)
    return dataclasses.replace(prepared, template=template)


def test_the_steps_drop_frames_first_then_narrow() -> None:
    assert list(budget_steps(480, 36, 12)) == [
        BudgetStep(2, 480), BudgetStep(2, 384), BudgetStep(2, 306), BudgetStep(2, 246),
        BudgetStep(2, 196), BudgetStep(2, 156),
    ]  # fmt: skip
    # Halving 8 fps would leave 4: only the width steps down.
    assert [s.frame_step for s in budget_steps(480, 36, 8)] == [1] * BUDGET_WIDTH_STEPS
    # Never below the narrowest output.
    assert [s.width for s in budget_steps(160, 36, 8)] == [128, 102, 82, 66]
    assert all(s.width >= OUTPUT_MIN_WIDTH for s in budget_steps(96, 36, 12))
    assert scaled_height(480, 270, 384) == 216


def test_dropped_frames_keep_the_loop_as_long() -> None:
    delays = frame_delays_cs(13, 12)
    halved = stepped_delays(delays, 2)
    assert len(halved) == 7 and sum(halved) == sum(delays)


def test_a_gif_within_its_budget_is_untouched(small12: PreparedTemplate) -> None:
    plain = render(small12, CAPTION)
    assert plain.budget is None
    budgeted = render(with_budget(small12, len(plain.gif)), CAPTION)
    assert budgeted.gif == plain.gif  # the very bytes of a render with no budget
    assert budgeted.budget is not None
    assert budgeted.budget.fits and not budgeted.budget.stepped
    assert budgeted.budget.to_json()["bytes"] == len(plain.gif)
    # The budget is part of the key: a cached render never answers for another budget.
    assert budgeted.key != plain.key
    assert budgeted.key == render_key(with_budget(small12, len(plain.gif)).template, CAPTION)


def test_a_render_over_budget_drops_every_second_frame_first(small12: PreparedTemplate) -> None:
    plain = render(small12, CAPTION)
    budget = len(plain.gif) - 1
    result = render(with_budget(small12, budget), CAPTION)
    outcome = result.budget
    assert outcome is not None and outcome.fits and outcome.stepped
    assert (outcome.frame_step, outcome.width) == (2, 160)
    assert len(result.gif) <= budget == outcome.max_bytes
    assert outcome.full_bytes == len(plain.gif)
    frames, durations, size = gif_frames(result.gif)
    plain_frames, plain_durations, _ = gif_frames(plain.gif)
    assert len(frames) == outcome.frames == (len(plain_frames) + 1) // 2
    assert sum(durations) == sum(plain_durations)  # the loop lasts as long
    assert size == (outcome.width, outcome.height) == (160, small12.height)
    # The kept frames are the full GIF's own, every second one.
    for kept, original in zip(frames, plain_frames[::2], strict=True):
        assert np.array_equal(kept, original)
    # Only the GIF stepped down: the MP4 and the rest are the render's own.
    assert (result.frames, result.width, result.mp4 == plain.mp4) == (plain.frames, 160, True)
    assert result.poster == plain.poster


def test_a_tight_budget_narrows_until_it_fits(small12: PreparedTemplate) -> None:
    plain = render(small12, CAPTION)
    budget = len(plain.gif) // 4
    result = render(with_budget(small12, budget), CAPTION)
    outcome = result.budget
    assert outcome is not None and outcome.fits and outcome.frame_step == 2
    assert outcome.width < small12.width and outcome.attempts > 2
    assert len(result.gif) <= budget
    frames, durations, size = gif_frames(result.gif)
    assert size == (outcome.width, outcome.height)
    assert outcome.height == scaled_height(small12.width, small12.height, outcome.width)
    assert len(frames) == outcome.frames and sum(durations) == sum(gif_frames(plain.gif)[1])
    # The narrower GIF still looks like its frames: re-quantised on the template's palette.
    composed = compose_frames(small12, caption_layer(small12, CAPTION))
    truth = np.asarray(Image.fromarray(composed[0]).resize(size, Image.Resampling.LANCZOS))
    assert ssim(truth, frames[0]) > 0.95  # measured 0.984
    # Same inputs, same bytes.
    assert render(with_budget(small12, budget), CAPTION).gif == result.gif


def test_a_budget_nothing_fits_keeps_the_smallest_step(small12: PreparedTemplate) -> None:
    result = render(small12, CAPTION, settings=RenderSettings(max_gif_bytes=1))
    outcome = result.budget
    assert outcome is not None and not outcome.fits and outcome.stepped
    steps = list(budget_steps(small12.width, small12.frame_count, small12.fps))
    assert (outcome.frame_step, outcome.width) == (steps[-1].frame_step, steps[-1].width)
    # Widths far over the budget by their area are skipped unmade; the smallest is always made.
    assert 3 <= outcome.attempts < len(steps) + 1
    assert outcome.bytes == len(result.gif) > 1
    assert gif_frames(result.gif)[2] == (outcome.width, outcome.height)
    assert outcome.to_json()["fits"] is False
    # Settings override the template's own budget, and the key says which applied.
    assert result.key == render_key(small12.template, CAPTION, RenderSettings(max_gif_bytes=1))
    assert result.key != render_key(small12.template, CAPTION)


def test_at_eight_fps_only_the_width_steps_down(small: PreparedTemplate) -> None:
    plain = render(small, CAPTION)
    result = render(small, CAPTION, settings=RenderSettings(max_gif_bytes=len(plain.gif) - 1))
    outcome = result.budget
    assert outcome is not None and outcome.fits
    assert (outcome.frame_step, outcome.width, outcome.frames) == (1, 128, plain.frames)
