"""Caption layout: wrapping, auto-fit, scripts, fallback, emoji, stroke, alignment (real fonts)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from loopmark.errors import CaptionRejected, TemplateInvalid
from loopmark.renderer.caption_layout import (
    DEFAULT_FONT,
    EMOJI_FONT,
    FALLBACK_FONTS,
    TextStyle,
    draw_fit,
    fit_caption,
    fonts_dir,
    render_caption_layer,
)

BOX = (440, 120)
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "layout"


def style(
    font: str = DEFAULT_FONT,
    *,
    size: int | None = None,
    stroke_width: int = 0,
    stroke: tuple[int, int, int] = BLACK,
    **kwargs: object,
) -> TextStyle:
    """A style; `size` pins the font size (min = max) so pixels can be compared."""
    if size is not None:
        kwargs.update(max_size=size, min_size=size)
    return TextStyle(
        font=fonts_dir() / font,
        fill=WHITE,
        stroke=stroke,
        stroke_width=stroke_width,
        **kwargs,  # type: ignore[arg-type]
    )


def alpha(image: Image.Image) -> np.ndarray:
    return np.asarray(image)[..., 3]


def ink_columns(image: Image.Image) -> np.ndarray:
    return np.nonzero(alpha(image).max(axis=0))[0]


def ink_bands(image: Image.Image) -> int:
    """Number of horizontal bands of ink separated by empty rows (lines of text)."""
    rows = alpha(image).max(axis=1) > 0
    return int(np.count_nonzero(rows[1:] & ~rows[:-1]) + rows[0])


def save(name: str, layer: Image.Image) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    background = Image.new("RGBA", layer.size, (70, 110, 160, 255))
    background.alpha_composite(layer)
    background.save(ARTIFACTS / name)


def test_long_caption_wraps_into_max_lines_inside_the_box() -> None:
    text = "When the weekend finally arrives and the coffee is still hot"
    st = style("BebasNeue-Bold.otf", stroke_width=4, max_lines=2)
    fit = fit_caption(text, BOX, st)
    layer = render_caption_layer(text, BOX, st)
    save("wrap.png", layer)
    assert layer.size == BOX and layer.mode == "RGBA"
    assert len(fit.lines) == 2
    assert " ".join(fit.lines) == text
    assert ink_bands(layer) == 2
    left, top, right, bottom = layer.getbbox()
    # Nothing clipped: the stroke keeps the ink off the box's edges.
    assert left > 0 and top > 0 and right < BOX[0] and bottom < BOX[1]


def test_auto_fit_shrinks_longer_text_and_keeps_ink_inside() -> None:
    st = style(stroke_width=3, max_size=48, min_size=12, max_lines=2)
    sizes = []
    for text in (
        "Hi",
        "A medium caption, long enough to shrink",
        "A longer caption that needs " * 3,
    ):
        fit = fit_caption(text.strip(), BOX, st)
        layer = render_caption_layer(text.strip(), BOX, st)
        left, top, right, bottom = layer.getbbox()
        assert left > 0 and top > 0 and right < BOX[0] and bottom < BOX[1], text
        sizes.append(fit.size)
    assert sizes[0] == 48
    assert sizes[0] > sizes[1] > sizes[2] >= 12
    # The ink of the fitted long caption really is smaller: compare glyph heights.
    short = render_caption_layer("H", BOX, st)
    long = render_caption_layer("H " + "word " * 20 + "H", BOX, st)
    short_h = short.getbbox()[3] - short.getbbox()[1]
    long_h = long.getbbox()[3] - long.getbbox()[1]
    assert ink_bands(long) == 2
    assert long_h < 2 * short_h


def test_caption_that_cannot_fit_at_min_size_is_rejected() -> None:
    st = style(max_size=40, min_size=30, max_lines=1)
    with pytest.raises(CaptionRejected) as caught:
        render_caption_layer("This caption is far too long for one line at thirty", BOX, st)
    assert caught.value.code == "caption_does_not_fit"


def test_box_shorter_than_one_line_is_rejected() -> None:
    with pytest.raises(CaptionRejected) as caught:
        render_caption_layer("Hi", (400, 10), style(max_size=40, min_size=20))
    assert caught.value.code == "caption_does_not_fit"


def test_word_longer_than_the_line_breaks_only_as_a_last_resort() -> None:
    st = style(size=30, max_lines=3)
    fit = fit_caption("Supercalifragilisticexpialidociouslyextraordinary", (300, 120), st)
    assert len(fit.lines) >= 2
    assert "".join(fit.lines) == "Supercalifragilisticexpialidociouslyextraordinary"
    # Words that fit are never cut.
    assert fit_caption("tiny words only", (300, 120), st).lines == ("tiny words only",)


def test_arabic_is_joined_and_right_to_left() -> None:
    st = style(size=40)
    word = "مرحبا"
    joined = render_caption_layer(word, BOX, st)
    save("arabic.png", joined)
    isolated = [render_caption_layer(letter, BOX, st) for letter in word]
    joined_width = len(ink_columns(joined))
    isolated_width = sum(len(ink_columns(layer)) for layer in isolated)
    # Joined (initial/medial/final) forms are narrower than the isolated letters side by side.
    assert joined_width < 0.9 * isolated_width
    # The last logical letter, alif (the tallest stroke), is drawn at the left end.
    a = alpha(joined)
    top_row = np.nonzero(a.max(axis=1))[0][0]
    alif_columns = np.nonzero(a[top_row])[0]
    columns = ink_columns(joined)
    assert alif_columns.max() < columns[0] + 0.25 * (columns[-1] - columns[0])


def test_arabic_differs_from_unshaped_basic_layout() -> None:
    st = style(size=40)
    shaped = alpha(render_caption_layer("مرحبا", BOX, st)) > 127
    font = ImageFont.truetype(
        str(fonts_dir() / "NotoSansArabic-Bold.ttf"), 40, layout_engine=ImageFont.Layout.BASIC
    )
    basic_image = Image.new("L", BOX, 0)
    ImageDraw.Draw(basic_image).text(
        (BOX[0] / 2, BOX[1] / 2), "مرحبا", font=font, fill=255, anchor="mm"
    )
    basic = np.asarray(basic_image) > 127
    assert np.count_nonzero(shaped ^ basic) > 0.5 * np.count_nonzero(shaped)


def test_mixed_direction_runs_are_ordered_by_the_bidi_algorithm() -> None:
    # A right-to-left paragraph: "Hello" (logically last) is drawn leftmost, the number right
    # of it, the Arabic word rightmost.
    fit = fit_caption("مرحبا 2024 Hello", (600, 120), style(size=40))
    x = {run.text.strip(): run.x for run in fit.runs if run.text.strip()}
    assert x["Hello"] < x["2024"] < x["مرحبا"]
    # A left-to-right paragraph keeps its English first on the left.
    fit = fit_caption("Hello שלום", (600, 120), style(size=40))
    x = {run.text.strip(): run.x for run in fit.runs if run.text.strip()}
    assert x["Hello"] < x["שלום"]
    assert [run.direction for run in fit.runs if run.text.strip() == "שלום"] == ["rtl"]


def test_devanagari_is_shaped() -> None:
    st = style(size=40)
    word = "क्या"  # ka + virama + ya + aa: a conjunct when shaped
    shaped = render_caption_layer(word, (600, 120), st)
    save("devanagari.png", shaped)
    pieces = sum(len(ink_columns(render_caption_layer(ch, (600, 120), st))) for ch in word)
    assert len(ink_columns(shaped)) < 0.8 * pieces


def test_cjk_wraps_between_characters() -> None:
    text = "今日はとても楽しい一日でしたまた明日も会いましょう"
    st = style(max_size=40, min_size=24, max_lines=2)
    fit = fit_caption(text, (360, 120), st)
    layer = render_caption_layer(text, (360, 120), st)
    save("cjk.png", layer)
    assert len(fit.lines) == 2
    assert "".join(fit.lines) == text
    assert all(fit.lines)
    assert ink_bands(layer) == 2


def test_cjk_never_starts_a_line_with_closing_punctuation() -> None:
    text = "今日はとても楽しい一日でした。また明日も会いましょう！"
    fit = fit_caption(text, (360, 120), style(max_size=40, min_size=20, max_lines=2))
    assert all(line[0] not in "。！、" for line in fit.lines)


def test_emoji_are_drawn_in_colour_at_text_size() -> None:
    st = style(size=40)
    layer = render_caption_layer("🎉", BOX, st)
    save("emoji.png", layer)
    rgba = np.asarray(layer).astype(int)
    opaque = rgba[..., 3] > 200
    chroma = rgba[..., :3].max(axis=2) - rgba[..., :3].min(axis=2)
    assert np.count_nonzero(opaque & (chroma > 80)) > 100
    # Comparable to the text: taller than a capital, not twice as tall.
    emoji_box = layer.getbbox()
    cap_box = render_caption_layer("H", BOX, st).getbbox()
    ratio = (emoji_box[3] - emoji_box[1]) / (cap_box[3] - cap_box[1])
    assert 1.0 < ratio < 1.7


def test_emoji_sequences_are_one_glyph() -> None:
    fit = fit_caption("👩\u200d👩\u200d👧", BOX, style(size=40))
    family = render_caption_layer("👩\u200d👩\u200d👧", BOX, style(size=40))
    woman = render_caption_layer("👩", BOX, style(size=40))
    assert [run.emoji for run in fit.runs] == [True]
    # Three people drawn side by side would be about three times as wide.
    assert len(ink_columns(family)) < 1.5 * len(ink_columns(woman))


def test_glyph_missing_from_the_brand_font_falls_back_instead_of_tofu() -> None:
    size = 60
    layer = render_caption_layer("中", BOX, style("BebasNeue-Bold.otf", size=size))
    save("fallback.png", layer)
    ours = crop_mask(alpha(layer))

    def direct(font_file: str) -> np.ndarray:
        font = ImageFont.truetype(str(fonts_dir() / font_file), size)
        image = Image.new("L", BOX, 0)
        ImageDraw.Draw(image).text((50, 90), "中", font=font, fill=255, anchor="ls")
        return crop_mask(np.asarray(image))

    tofu = direct("BebasNeue-Bold.otf")  # the brand font's .notdef box
    droid = direct("DroidSansFallback.ttf")
    assert similarity(ours, droid) > 0.85
    assert similarity(ours, tofu) < 0.5


def crop_mask(a: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(a > 127)
    return a[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] > 127


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two masks aligned at their top-left corners."""
    h, w = max(a.shape[0], b.shape[0]), max(a.shape[1], b.shape[1])
    pa, pb = np.zeros((h, w), bool), np.zeros((h, w), bool)
    pa[: a.shape[0], : a.shape[1]] = a
    pb[: b.shape[0], : b.shape[1]] = b
    return np.count_nonzero(pa & pb) / np.count_nonzero(pa | pb)


def test_fallback_runs_share_the_baseline() -> None:
    fit = fit_caption("Hello 中文", BOX, style("Lobster-Regular.otf", size=40))
    assert len({run.font for run in fit.runs}) == 2
    assert len({run.baseline for run in fit.runs}) == 1


@pytest.mark.parametrize("text", ["\ue000", "ok \U000f0000", "\u0378", "\U0001fbff\u0378"])
def test_character_no_font_has_is_rejected(text: str) -> None:
    with pytest.raises(CaptionRejected) as caught:
        render_caption_layer(text, BOX, style())
    assert caught.value.code == "caption_unsupported_character"


def test_stroke_colour_surrounds_the_fill() -> None:
    red = (230, 20, 20)
    layer = render_caption_layer("I", BOX, style(size=60, stroke_width=6, stroke=red))
    rgba = np.asarray(layer).astype(int)
    row = rgba[rgba.shape[0] // 2]
    opaque = np.nonzero(row[:, 3] == 255)[0]
    first, last = row[opaque[0], :3], row[opaque[-1], :3]
    middle = row[(opaque[0] + opaque[-1]) // 2, :3]
    assert tuple(first) == red and tuple(last) == red
    assert tuple(middle) == WHITE


def test_stroke_width_scales_with_the_chosen_size() -> None:
    st = style(stroke_width=6, max_size=60, min_size=10)
    assert fit_caption("Hi", BOX, st).stroke_width == 6
    small = fit_caption("a caption long enough to shrink the text a lot " * 2, BOX, st)
    assert small.size < 40
    assert 1 <= small.stroke_width < 6


def test_rendering_is_deterministic() -> None:
    text = "Same caption 🎉 مرحبا 中文"
    st = style("CherryBombOne-Regular.otf", stroke_width=4)
    first = render_caption_layer(text, BOX, st)
    second = render_caption_layer(text, BOX, st)
    assert first.tobytes() == second.tobytes()


def test_alignment_moves_the_ink() -> None:
    text = "Short"
    left = render_caption_layer(text, BOX, style(size=40, stroke_width=3, align="left"))
    center = render_caption_layer(text, BOX, style(size=40, stroke_width=3, align="center"))
    right = render_caption_layer(text, BOX, style(size=40, stroke_width=3, align="right"))
    lbox, cbox, rbox = left.getbbox(), center.getbbox(), right.getbbox()
    assert lbox[0] < 10
    assert rbox[2] > BOX[0] - 10
    assert lbox[0] < cbox[0] < rbox[0]
    assert abs((cbox[0] + cbox[2]) / 2 - BOX[0] / 2) < 4
    # The same glyphs, only moved.
    assert left.crop(lbox).tobytes() == right.crop(rbox).tobytes()


def test_text_is_centred_vertically() -> None:
    layer = render_caption_layer("Centred", BOX, style(size=40))
    _, top, _, bottom = layer.getbbox()
    assert abs(top - (BOX[1] - bottom)) <= 2


def test_hard_line_breaks_are_kept() -> None:
    fit = fit_caption("one\ntwo", BOX, style(size=30, max_lines=2))
    assert fit.lines == ("one", "two")
    with pytest.raises(CaptionRejected):
        fit_caption("one\ntwo\nthree", BOX, style(size=30, max_lines=2))


def test_blank_caption_gives_an_empty_layer() -> None:
    layer = render_caption_layer("   ", BOX, style())
    assert layer.size == BOX and layer.getbbox() is None


def test_missing_brand_font_is_a_template_error(tmp_path: Path) -> None:
    st = TextStyle(font=tmp_path / "nope.ttf", fill=WHITE, stroke=BLACK, stroke_width=0)
    with pytest.raises(TemplateInvalid):
        render_caption_layer("Hi", BOX, st)


def test_every_shipped_font_is_listed_with_a_licence() -> None:
    directory = fonts_dir()
    readme = (directory / "README.md").read_text(encoding="utf-8")
    shipped = sorted(p.name for p in directory.iterdir() if p.suffix in (".ttf", ".otf"))
    for name in (DEFAULT_FONT, EMOJI_FONT, *FALLBACK_FONTS):
        assert name in shipped
    for name in shipped:
        assert name in readme, f"{name} is not listed in static/fonts/README.md"
    for licence in re.findall(r"licenses/[\w.-]+\.txt", readme):
        assert (directory / licence).is_file(), licence


# ---------------------------------------------------------------------------------------------
# Balanced line breaking


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
    left, top, right, bottom = render_caption_layer(text, HEAD_SCRATCH_BOX, st).getbbox()
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
