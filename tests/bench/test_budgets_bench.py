"""The budget bench (``python -m bench.budgets``): its rows measure the GIF the render made (the
stepped one under a tight budget, scored against the frames it stands for) and its report marks
each limit."""

from __future__ import annotations

from bench.budgets import LIMITS, Case, full_row, render_row, report
from loopmark.renderer.prepare import PreparedTemplate


def test_rows_score_the_gif_each_budget_gives(small: PreparedTemplate) -> None:
    full = full_row(small, "Budget")
    assert full.budget is None and full.fits and full.frame_step == 1
    assert full.width == small.width and full.frames == small.frame_count
    assert full.ssim is not None and full.ssim > 0.9 and full.mp4_bytes > 0
    tight, stage = render_row(small, 50_000, "Budget")
    assert stage.budget is not None and stage.budget.stepped
    assert tight.fits and tight.bytes == len(stage.gif) <= 50_000
    assert tight.width == stage.budget.width < small.width
    # Scored against the composed frames scaled to the GIF's size, not left out.
    assert tight.ssim is not None and tight.ssim > 0.9
    text = report({"small": [full, tight]}, [Case("small", small)])
    assert all(name in text for _, name in LIMITS)
    assert "| small | 8 @ 8 fps | 160×90 |" in text
    assert f"| {tight.width}×{tight.height} |" in text
