"""Caption fitting: the largest size at which the caption fits the text box, and where it goes.

The size is bisected with greedy line filling; the breaks are then balanced at that size. Lines
are shaped in visual order and placed by their ink (not the font's line boxes), so display
fonts with unusual metrics still sit inside the box.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from loopmark.errors import N_, CaptionRejected, TemplateInvalid
from loopmark.renderer.caption.balance import balanced_wrappings
from loopmark.renderer.caption.bidi import visual_order
from loopmark.renderer.caption.fonts import font_chain
from loopmark.renderer.caption.itemize import Cluster, Run, itemize, runs
from loopmark.renderer.caption.measure import Measurer
from loopmark.renderer.caption.wrap import wrap, wrap_pieces

# Baseline-to-baseline distance in ems; raised per line pair when ink would otherwise touch.
LINE_PITCH_EM = 1.15
# Extra gap between two lines' ink (after strokes), in ems, when their ink sets the pitch.
LINE_INK_GAP_EM = 0.08
# Kept clear inside the box beyond the stroke: anti-aliasing spills past the glyph's bbox.
EDGE_MARGIN_PX = 1


@dataclass(frozen=True)
class TextStyle:
    font: Path
    fill: tuple[int, int, int]
    stroke: tuple[int, int, int]
    stroke_width: int  # pixels at max_size; scaled with the chosen size (min 1 when > 0)
    align: str = "center"  # "left" | "center" | "right"
    max_lines: int = 2
    max_size: int = 48  # pixels
    min_size: int = 14  # pixels


@dataclass(frozen=True)
class PlacedRun:
    """One shaped run: drawn at pen position (x, baseline) in `font` with `direction`."""

    text: str
    font: Path
    emoji: bool
    direction: str  # "ltr" | "rtl"
    x: float
    baseline: float


@dataclass(frozen=True)
class CaptionFit:
    """The chosen layout: font size in pixels, stroke width, lines, and the runs to draw."""

    size: int
    stroke_width: int
    lines: tuple[str, ...]  # each line's text in logical order
    runs: tuple[PlacedRun, ...]


def fit_caption(
    text: str, size: tuple[int, int], style: TextStyle, *, balance: bool = True
) -> CaptionFit:
    """Lay the caption out at the largest size in [min_size, max_size] that fits the box.

    The size is the largest at which greedy line filling fits in `max_lines`. With `balance`
    (the default), the breaks are then moved so that the widest line is as narrow as possible,
    in the same number of lines at that size (no one-word last line when a better split fits);
    `balance=False` keeps the greedy breaks.
    """
    _check(size, style)
    chain = font_chain(Path(style.font))
    paragraphs = itemize(text, chain)
    if not any(paragraphs):
        return CaptionFit(style.max_size, _stroke_at(style, style.max_size), (), ())
    measure = Measurer(chain)
    for emergency in (False, True):
        best = _largest_fit(paragraphs, size, style, measure, emergency=emergency)
        if best is None:
            continue
        if not balance or len(best.lines) == len(paragraphs):
            return best  # one line per paragraph: nothing to balance
        # The size is chosen with greedy filling; balancing only moves the breaks at that
        # size. A balanced split can be taller (a descender moved to the last line), so the
        # best few are tried in order and the greedy layout stands when none fits.
        avail = _avail(style, best.size, size[0])
        for wrapped in balanced_wrappings(paragraphs, best.size, avail, measure, emergency):
            balanced = _place(wrapped, best.size, size, style, measure)
            if balanced is not None:
                return balanced
        return best
    raise CaptionRejected(
        N_("That caption does not fit on this loop (%(lines)d lines at most). Please shorten it."),
        params={"lines": style.max_lines},
        code="caption_does_not_fit",
    )


def _check(size: tuple[int, int], style: TextStyle) -> None:
    box_w, box_h = size
    if box_w <= 0 or box_h <= 0:
        raise ValueError(f"text box must be positive, got {size}")
    if style.align not in ("left", "center", "right"):
        raise ValueError(f"align must be left, center or right, got {style.align!r}")
    if not Path(style.font).is_file():
        raise TemplateInvalid(f"caption font not found: {Path(style.font).name}")


def _largest_fit(
    paragraphs: Sequence[Sequence[Cluster]],
    box: tuple[int, int],
    style: TextStyle,
    measure: Measurer,
    *,
    emergency: bool,
) -> CaptionFit | None:
    """The greedy layout at the largest size that fits, or None when even min_size does not."""
    best: CaptionFit | None = None
    # Fitting is monotone in practice (a smaller size never needs more room), so bisect.
    lo, hi = style.min_size, max(style.min_size, style.max_size)
    while lo <= hi:
        mid = (lo + hi) // 2
        fit = _layout_at(paragraphs, mid, box, style, measure, emergency=emergency)
        if fit is None:
            hi = mid - 1
        else:
            best, lo = fit, mid + 1
    return best


def _stroke_at(style: TextStyle, size: int) -> int:
    if style.stroke_width <= 0:
        return 0
    return max(1, round(style.stroke_width * size / max(1, style.max_size)))


def _avail(style: TextStyle, size: int, box_w: int) -> float:
    """Width lines may take at `size`: the box less the stroke and the edge margin each side."""
    return box_w - 2 * (_stroke_at(style, size) + EDGE_MARGIN_PX)


def _layout_at(
    paragraphs: Sequence[Sequence[Cluster]],
    size: int,
    box: tuple[int, int],
    style: TextStyle,
    measure: Measurer,
    *,
    emergency: bool,
) -> CaptionFit | None:
    """Greedy wrapping at `size`, placed in the box; None when it does not fit."""
    avail = _avail(style, size, box[0])
    if avail <= 0:
        return None
    wrapped: list[list[Cluster]] = []
    for paragraph in paragraphs:
        if paragraph:
            pieces = wrap_pieces(paragraph, size, avail, measure, emergency)
            wrapped.extend(wrap(pieces, size, avail, measure))
        else:
            wrapped.append([])
        if len(wrapped) > style.max_lines:
            return None
    return _place(wrapped, size, box, style, measure)


@dataclass(frozen=True)
class _Line:
    runs: tuple[Run, ...]  # visual order, left to right
    advances: tuple[float, ...]
    width: float
    ink_left: float
    ink_right: float
    ink_top: float  # negative: above the baseline
    ink_bottom: float
    text: str


def _shape_line(clusters: Sequence[Cluster], size: int, measure: Measurer) -> _Line:
    logical = runs(clusters)
    order = visual_order([run.level for run in logical])
    ordered = tuple(logical[i] for i in order)
    advances = tuple(measure.advance(run, size) for run in ordered)
    pen = 0.0
    left, right, top, bottom = math.inf, -math.inf, 0.0, 0.0
    for run, advance in zip(ordered, advances, strict=True):
        ink = measure.ink(run, size)
        if ink[2] > ink[0] or ink[3] > ink[1]:
            left, right = min(left, pen + ink[0]), max(right, pen + ink[2])
            top, bottom = min(top, ink[1]), max(bottom, ink[3])
        pen += advance
    if left > right:  # no ink at all (spaces only)
        left, right = 0.0, pen
    text = "".join(c.text for c in clusters)
    return _Line(ordered, advances, pen, left, right, top, bottom, text)


def _place(
    wrapped: Sequence[Sequence[Cluster]],
    size: int,
    box: tuple[int, int],
    style: TextStyle,
    measure: Measurer,
) -> CaptionFit | None:
    """Shape and position the given lines in the box; None when their ink does not fit."""
    box_w, box_h = box
    stroke = _stroke_at(style, size)
    margin = stroke + EDGE_MARGIN_PX
    avail = _avail(style, size, box_w)
    if avail <= 0 or len(wrapped) > style.max_lines:
        return None
    lines = [_shape_line(clusters, size, measure) for clusters in wrapped]
    if any(max(line.width, line.ink_right - line.ink_left) > avail for line in lines):
        return None
    baselines = _baselines(lines, size, stroke)
    ink_top = min(b + line.ink_top for b, line in zip(baselines, lines, strict=True)) - margin
    ink_bottom = max(b + line.ink_bottom for b, line in zip(baselines, lines, strict=True)) + margin
    if ink_bottom - ink_top > box_h:
        return None
    # Centre the ink (not the font's line boxes) vertically: display fonts' metrics vary wildly.
    shift = (box_h - (ink_bottom - ink_top)) / 2 - ink_top
    placed: list[PlacedRun] = []
    for line, baseline in zip(lines, baselines, strict=True):
        x = _line_x(line, style.align, box_w, margin)
        for run, advance in zip(line.runs, line.advances, strict=True):
            placed.append(
                PlacedRun(
                    text=run.text,
                    font=measure.chain.fonts[run.font],
                    emoji=measure.is_emoji(run.font),
                    direction=run.direction,
                    x=round(x, 2),
                    baseline=round(baseline + shift, 2),
                )
            )
            x += advance
    return CaptionFit(size, stroke, tuple(line.text for line in lines), tuple(placed))


def _baselines(lines: Sequence[_Line], size: int, stroke: int) -> list[float]:
    """A fixed pitch, widened where one line's ink would meet the next one's."""
    pitch = LINE_PITCH_EM * size
    gap = 2 * stroke + LINE_INK_GAP_EM * size
    baselines = [0.0]
    for upper, lower in zip(lines, lines[1:], strict=False):
        baselines.append(baselines[-1] + max(pitch, upper.ink_bottom - lower.ink_top + gap))
    return baselines


def _line_x(line: _Line, align: str, box_w: int, margin: int) -> float:
    """Pen position of the line's left end for the alignment."""
    if align == "left":
        x = float(margin)
    elif align == "right":
        x = box_w - margin - line.width
    else:
        x = (box_w - line.width) / 2
    # Overhanging ink (swashes, italics) is pulled back inside the box.
    x = max(x, margin - line.ink_left)
    return min(x, box_w - margin - line.ink_right)
