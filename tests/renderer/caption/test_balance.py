"""Caption balancing: no one-word last line, narrowest widest line, never smaller or more lines."""

from __future__ import annotations

import pytest
from PIL import ImageFont

from loopmark.errors import CaptionRejected
from loopmark.renderer.caption import (
    DEFAULT_FONT,
    TextStyle,
    draw_fit,
    fit_caption,
    fonts_dir,
    render_caption_layer,
)
from tests.renderer.caption.helpers import BOX, ink_box, save, style

HEAD_SCRATCH_BOX = (284, 80)  # templates_video/head-scratch: Lobster, stroke 4, right-aligned


def head_scratch() -> TextStyle:
    return style("Lobster-Regular.otf", stroke_width=4, align="right", max_size=40, max_lines=2)


def line_widths(font: str, size: int, lines: tuple[str, ...]) -> list[float]:
    """Advance widths measured by Pillow directly, not by the module under test."""
    face = ImageFont.truetype(str(fonts_dir() / font), size, layout_engine=ImageFont.Layout.RAQM)
    return [face.getlength(line) for line in lines]


def spread(font: str, size: int, lines: tuple[str, ...]) -> float:
    widths = line_widths(font, size, lines)
    return max(widths) - min(widths)


def save_pair(name: str, text: str, box: tuple[int, int], st: TextStyle) -> None:
    """Greedy (before) and balanced (after) renders side by side, for a person to compare."""
    before = draw_fit(fit_caption(text, box, st, balance=False), box, st)
    after = draw_fit(fit_caption(text, box, st), box, st)
    save(f"balance_{name}_before.png", before)
    save(f"balance_{name}_after.png", after)


def test_the_widowed_caption_of_a_real_template_is_balanced() -> None:
    text, st = "Wait, what day is it?", head_scratch()
    greedy = fit_caption(text, HEAD_SCRATCH_BOX, st, balance=False)
    fit = fit_caption(text, HEAD_SCRATCH_BOX, st)
    save_pair("head_scratch", text, HEAD_SCRATCH_BOX, st)
    assert greedy.lines == ("Wait, what day is", "it?")  # the widow seen in a real render
    assert fit.size == greedy.size and len(fit.lines) == 2
    assert " ".join(fit.lines) == text
    font = "Lobster-Regular.otf"
    assert spread(font, fit.size, fit.lines) < spread(font, fit.size, greedy.lines)
    assert all(len(line.split()) >= 2 for line in fit.lines)
    # "Wait, what" / "day is it?" would be more even, but moving the descender of "day" to the
    # last line needs more height than the box has at this size: the best split that fits wins.
    assert fit.lines == ("Wait, what day", "is it?")
    left, top, right, bottom = ink_box(render_caption_layer(text, HEAD_SCRATCH_BOX, st))
    assert left > 0 and top > 0 and right < HEAD_SCRATCH_BOX[0] and bottom < HEAD_SCRATCH_BOX[1]


def test_balancing_picks_the_split_with_the_narrowest_widest_line() -> None:
    text = "Wait, what day is it?"
    st = style("CherryBombOne-Regular.otf", stroke_width=3, max_size=40, max_lines=2)
    fit = fit_caption(text, (360, 120), st)
    save_pair("cherry", text, (360, 120), st)
    assert fit_caption(text, (360, 120), st, balance=False).lines == ("Wait, what day is", "it?")
    assert fit.lines == ("Wait, what", "day is it?")
    # No other break gives a narrower widest line (checked with Pillow's own measurements).
    words = text.split()
    splits = [(" ".join(words[:k]), " ".join(words[k:])) for k in range(1, len(words))]
    font = "CherryBombOne-Regular.otf"
    widest = {split: max(line_widths(font, fit.size, split)) for split in splits}
    assert widest[fit.lines] == min(widest.values())


@pytest.mark.parametrize(
    ("font", "box", "max_lines", "text"),
    [
        (DEFAULT_FONT, BOX, 2, "Did I leave the oven on?"),
        (DEFAULT_FONT, BOX, 2, "I can't even right now"),
        (DEFAULT_FONT, BOX, 2, "Hmm… one more cup?"),
        ("CherryBombOne-Regular.otf", (360, 120), 2, "I can't even right now"),
        ("BebasNeue-Bold.otf", (300, 160), 3, "Happy birthday to the best friend in the world"),
    ],
)
def test_no_line_is_a_lone_word_when_a_balanced_split_exists(
    font: str, box: tuple[int, int], max_lines: int, text: str
) -> None:
    st = style(font, stroke_width=3, max_size=40, max_lines=max_lines)
    greedy = fit_caption(text, box, st, balance=False)
    fit = fit_caption(text, box, st)
    assert any(len(line.split()) == 1 for line in greedy.lines)  # greedy leaves a widow here
    assert all(len(line.split()) >= 2 for line in fit.lines), fit.lines
    assert " ".join(fit.lines) == text
    assert (fit.size, len(fit.lines)) == (greedy.size, len(greedy.lines))
    assert max(line_widths(font, fit.size, fit.lines)) <= max(
        line_widths(font, fit.size, greedy.lines)
    )


@pytest.mark.parametrize("text", ["Plot twist", "Best day ever 🎉", "Hi"])
def test_a_caption_that_fits_on_one_line_stays_on_one_line(text: str) -> None:
    st = style(stroke_width=3, max_size=40, max_lines=3)
    fit = fit_caption(text, BOX, st)
    assert fit.lines == (text,)
    assert fit.size == 40


def test_cjk_captions_balance_between_characters_and_keep_kinsoku() -> None:
    text = "今日はとても楽しい一日でした。"
    st = style(size=28, max_lines=2)
    greedy = fit_caption(text, (360, 120), st, balance=False)
    fit = fit_caption(text, (360, 120), st)
    save_pair("cjk", text, (360, 120), st)
    assert greedy.lines == ("今日はとても楽しい一日で", "した。")
    assert len(fit.lines) == 2 and "".join(fit.lines) == text
    assert abs(len(fit.lines[0]) - len(fit.lines[1])) <= 1
    assert all(line[0] not in "。、！" for line in fit.lines)
    font = "DroidSansFallback.ttf"  # NotoSans has no kana: every glyph here falls back to it
    assert spread(font, 28, fit.lines) < spread(font, 28, greedy.lines)


def test_right_to_left_captions_balance_and_stay_right_to_left() -> None:
    text = "مرحبا بكم في عالم الصور المتحركة الجميلة"
    st = style(stroke_width=3, max_size=40, max_lines=2)
    greedy = fit_caption(text, BOX, st, balance=False)
    fit = fit_caption(text, BOX, st)
    save_pair("arabic", text, BOX, st)
    assert (fit.size, len(fit.lines)) == (greedy.size, 2)
    assert fit.lines != greedy.lines and " ".join(fit.lines) == text
    font = "NotoSansArabic-Bold.ttf"
    assert spread(font, fit.size, fit.lines) < spread(font, fit.size, greedy.lines)
    assert {run.direction for run in fit.runs if run.text.strip()} == {"rtl"}


def test_hard_breaks_stay_and_each_paragraph_balances() -> None:
    text = "one\ntwo three four five six seven"
    st = style("BebasNeue-Bold.otf", stroke_width=3, max_size=40, max_lines=3)
    greedy = fit_caption(text, (300, 160), st, balance=False)
    fit = fit_caption(text, (300, 160), st)
    assert greedy.lines == ("one", "two three four five", "six seven")
    assert fit.lines == ("one", "two three four", "five six seven")


# Sizes chosen before balancing existed (greedy filling), for captions whose breaks now move.
SIZES_BEFORE_BALANCING = [
    ("Lobster-Regular.otf", HEAD_SCRATCH_BOX, 4, 2, "Wait, what day is it?", 34),
    ("Lobster-Regular.otf", HEAD_SCRATCH_BOX, 4, 2, "Did I leave the oven on?", 37),
    ("Lobster-Regular.otf", HEAD_SCRATCH_BOX, 4, 2, "Hmm… one more cup?", 33),
    ("Lobster-Regular.otf", HEAD_SCRATCH_BOX, 4, 2, "Coffee first, then we talk about it", 34),
    (
        "BebasNeue-Bold.otf",
        (300, 160),
        3,
        3,
        "今日はとても楽しい一日でしたまた明日も会いましょう",
        32,
    ),
    (DEFAULT_FONT, (200, 200), 2, 4, "Supercalifragilisticexpialidocious is a word", 35),
]


@pytest.mark.parametrize(
    ("font", "box", "stroke", "max_lines", "text", "before"), SIZES_BEFORE_BALANCING
)
def test_balancing_never_shrinks_the_text_nor_adds_lines(
    font: str, box: tuple[int, int], stroke: int, max_lines: int, text: str, before: int
) -> None:
    st = style(font, stroke_width=stroke, max_size=40, max_lines=max_lines)
    greedy = fit_caption(text, box, st, balance=False)
    fit = fit_caption(text, box, st)
    assert fit.size == greedy.size == before
    assert len(fit.lines) == len(greedy.lines) <= max_lines
    assert fit.lines != greedy.lines  # these captions do get new breaks
    # Still the largest size: one pixel more does not fit in max_lines.
    with pytest.raises(CaptionRejected):
        fit_caption(
            text, box, style(font, stroke_width=stroke, size=before + 1, max_lines=max_lines)
        )


def test_balanced_layout_is_deterministic() -> None:
    text = "Happy birthday to the best friend 🎉 in the world"
    st = style("CherryBombOne-Regular.otf", stroke_width=3, max_lines=3)
    assert fit_caption(text, (300, 160), st) == fit_caption(text, (300, 160), st)
