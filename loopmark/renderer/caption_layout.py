"""Caption layout: wrap, auto-fit, stroke, bidi, font fallback and colour emoji into an RGBA layer.

The caption never reaches FFmpeg as text: this module turns it into a transparent image of the
template's text box, which the renderer overlays. Pillow with raqm (HarfBuzz + FriBiDi) shapes
each run; this module does what Pillow does not: pick a font per grapheme cluster (the brand
font first, then a fallback chain, colour emoji from a bitmap font), order mixed-direction runs
(a compact Unicode bidi algorithm, enough for text without explicit bidi controls, which the
caption policy rejects), break lines (spaces, and between CJK characters), choose the
largest size that fits, and then balance the lines at that size (no one-word last line).
"""

from __future__ import annotations

import functools
import itertools
import math
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import regex
from PIL import Image, ImageDraw, ImageFont

from loopmark.errors import CaptionRejected, TemplateInvalid
from loopmark.package_data import FONTS_DIR

# The font used when a template names none: bold, very legible, Latin/Greek/Cyrillic/Vietnamese.
DEFAULT_FONT = "NotoSans-Bold.ttf"
# Tried in order after the brand font, for glyphs it lacks (file names under fonts_dir()).
FALLBACK_FONTS: tuple[str, ...] = (
    "NotoSans-Bold.ttf",
    "NotoSansArabic-Bold.ttf",
    "NotoSansHebrew-Bold.ttf",
    "NotoSansDevanagari-Bold.ttf",
    "NotoSansThai-Bold.ttf",
    "DroidSansFallback.ttf",
    "NotoSansSymbols2-Regular.ttf",
)
EMOJI_FONT = "NotoColorEmoji.ttf"
# Noto Color Emoji is a CBDT bitmap font whose only strike is 109 px: FreeType refuses any
# other size, so emoji are drawn at this size and scaled to the text.
EMOJI_STRIKE_PX = 109
# Emoji em relative to the text size: at 1.0 an emoji is about 1.17 em tall, which overpowers
# caps; 0.9 keeps it a little taller than capitals, as phones show them.
EMOJI_EM_SCALE = 0.9
# Baseline-to-baseline distance in ems; raised per line pair when ink would otherwise touch.
LINE_PITCH_EM = 1.15
# Extra gap between two lines' ink (after strokes), in ems, when their ink sets the pitch.
LINE_INK_GAP_EM = 0.08
# Balanced splits tried, best first, before the greedy one when a split's ink does not fit.
BALANCE_TRIES = 8
# Splits enumerated to rank those alternatives; long CJK captions in many lines stop here.
BALANCE_ENUMERATION_CAP = 2000
# Kept clear inside the box beyond the stroke: anti-aliasing spills past the glyph's bbox.
EDGE_MARGIN_PX = 1

_RTL_CLASSES = frozenset({"R", "AL"})
_NEUTRAL_CLASSES = frozenset({"B", "S", "WS", "ON", "BN", "ES", "ET", "CS", ""})
# Explicit embeddings, overrides and isolates: the caption policy rejects them; if one slips
# through it is treated as a neutral, never honoured (a right-to-left override can hide words).
_EXPLICIT_CLASSES = frozenset({"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"})
_HARD_BREAKS = frozenset({"\n", "\r", "\r\n", "\u2028", "\u2029", "\x85"})
# Line-breaking rules in the spirit of UAX #14 / kinsoku: no break before closing punctuation
# and small kana, none after opening brackets.
_NO_BREAK_BEFORE = frozenset(
    ")]}>.,!?:;%'\"’”»、。，．！？：；）］｝〕〉》」』】〙〗ー・…‥々〻ゝゞヽヾ"
    "ぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶ"
)
_NO_BREAK_AFTER = frozenset("([{<‘“«（［｛〔〈《「『【〘〖")
_BREAK_AFTER_DASHES = frozenset("-‐–—/")
_PRIVATE_USE_RANGES = ((0xE000, 0xF8FF), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD))

_CLUSTER_RE = regex.compile(r"\X")
_EMOJI_PRESENTATION_RE = regex.compile(
    r"[\p{Emoji_Presentation}\p{Regional_Indicator}\p{Emoji_Modifier}\uFE0F\u20E3]"
)
_IGNORABLE_RE = regex.compile(r"\p{Default_Ignorable_Code_Point}")


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


def fonts_dir() -> Path:
    """The fonts shipped in the package (``loopmark/static/fonts``)."""
    return FONTS_DIR


def default_font() -> Path:
    return fonts_dir() / DEFAULT_FONT


def render_caption_layer(text: str, size: tuple[int, int], style: TextStyle) -> Image.Image:
    """RGBA image of exactly `size` (the template's text box), transparent where there is no text.

    Deterministic: same inputs → same pixels. Raises CaptionRejected with code
    ``caption_does_not_fit`` or ``caption_unsupported_character``, and TemplateInvalid when the
    style's font file is missing.
    """
    fit = fit_caption(text, size, style)
    return draw_fit(fit, size, style)


def fit_caption(
    text: str, size: tuple[int, int], style: TextStyle, *, balance: bool = True
) -> CaptionFit:
    """Lay the caption out at the largest size in [min_size, max_size] that fits the box.

    The size is the largest at which greedy line filling fits in `max_lines`. With `balance`
    (the default), the breaks are then moved so that the widest line is as narrow as possible,
    in the same number of lines at that size (no one-word last line when a better split fits);
    `balance=False` keeps the greedy breaks.
    """
    box_w, box_h = size
    if box_w <= 0 or box_h <= 0:
        raise ValueError(f"text box must be positive, got {size}")
    if style.align not in ("left", "center", "right"):
        raise ValueError(f"align must be left, center or right, got {style.align!r}")
    if not Path(style.font).is_file():
        raise TemplateInvalid(f"caption font not found: {Path(style.font).name}")
    chain = _font_chain(Path(style.font))
    paragraphs = _itemize(text, chain)
    if not any(paragraphs):
        return CaptionFit(style.max_size, _stroke_at(style, style.max_size), (), ())
    measure = _Measurer(chain)
    low, high = style.min_size, max(style.min_size, style.max_size)
    # Fitting is monotone in practice (a smaller size never needs more room), so bisect.
    for emergency in (False, True):
        best: CaptionFit | None = None
        lo, hi = low, high
        while lo <= hi:
            mid = (lo + hi) // 2
            fit = _layout_at(paragraphs, mid, size, style, measure, emergency=emergency)
            if fit is None:
                hi = mid - 1
            else:
                best, lo = fit, mid + 1
        if best is not None:
            if not balance or len(best.lines) == len(paragraphs):
                return best  # one line per paragraph: nothing to balance
            # The size is chosen with greedy filling; balancing only moves the breaks at that
            # size. A balanced split can be taller (a descender moved to the last line), so the
            # best few are tried in order and the greedy layout stands when none fits.
            avail = _avail(style, best.size, size[0])
            for wrapped in _balanced_wrappings(paragraphs, best.size, avail, measure, emergency):
                balanced = _place(wrapped, best.size, size, style, measure)
                if balanced is not None:
                    return balanced
            return best
    raise CaptionRejected(
        f"the caption does not fit in {style.max_lines} line(s) at {style.min_size} px: shorten it",
        code="caption_does_not_fit",
    )


def draw_fit(fit: CaptionFit, size: tuple[int, int], style: TextStyle) -> Image.Image:
    """Draw a laid-out caption: strokes under fills for every run, colour emoji on top."""
    stroke_mask = Image.new("L", size, 0)
    fill_mask = Image.new("L", size, 0)
    emoji_layer: Image.Image | None = None
    stroke_draw = ImageDraw.Draw(stroke_mask)
    fill_draw = ImageDraw.Draw(fill_mask)
    for run in fit.runs:
        if run.emoji:
            emoji_layer = emoji_layer or Image.new("RGBA", size, (0, 0, 0, 0))
            _paste_emoji(emoji_layer, run, fit.size)
            continue
        font = _font(str(run.font), fit.size)
        position = (run.x, run.baseline)
        if fit.stroke_width > 0:
            stroke_draw.text(
                position,
                run.text,
                font=font,
                fill=255,
                anchor="ls",
                direction=run.direction,
                stroke_width=fit.stroke_width,
                stroke_fill=255,
            )
        fill_draw.text(
            position, run.text, font=font, fill=255, anchor="ls", direction=run.direction
        )
    layer = Image.new("RGBA", size, (*style.stroke, 0))
    if fit.stroke_width > 0:
        layer.putalpha(stroke_mask)
    fill_layer = Image.new("RGBA", size, (*style.fill, 0))
    fill_layer.putalpha(fill_mask)
    layer.alpha_composite(fill_layer)
    if emoji_layer is not None:
        layer.alpha_composite(emoji_layer)
    return layer


# ---------------------------------------------------------------------------------------------
# Fonts and coverage


@dataclass(frozen=True)
class _Chain:
    fonts: tuple[Path, ...]  # brand font first, then the fallbacks; the emoji font last
    emoji_index: int


def _font_chain(brand: Path) -> _Chain:
    base = fonts_dir()
    fonts: list[Path] = [brand]
    for name in FALLBACK_FONTS:
        path = base / name
        if path.resolve() != brand.resolve():
            fonts.append(path)
    fonts.append(base / EMOJI_FONT)
    return _Chain(tuple(fonts), len(fonts) - 1)


@functools.lru_cache(maxsize=64)
def _coverage(path: str) -> frozenset[int]:
    """Code points the font maps to a glyph; private-use and control points never count."""
    from fontTools.ttLib import TTFont

    with TTFont(path, lazy=True) as font:
        cmap = font.getBestCmap() or {}
    return frozenset(
        cp
        for cp in cmap
        if not (cp < 0x20 or 0x7F <= cp <= 0x9F)  # control characters (category Cc)
        and not any(lo <= cp <= hi for lo, hi in _PRIVATE_USE_RANGES)
    )


@functools.lru_cache(maxsize=256)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    # The same few fonts and sizes are used for every render: FreeType faces are reused.
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.RAQM)


def _emoji_scale(size: int) -> float:
    return size * EMOJI_EM_SCALE / EMOJI_STRIKE_PX


def _stroke_at(style: TextStyle, size: int) -> int:
    if style.stroke_width <= 0:
        return 0
    return max(1, round(style.stroke_width * size / max(1, style.max_size)))


# ---------------------------------------------------------------------------------------------
# Itemisation: clusters → font, bidi level, break opportunities (independent of the size)


@dataclass(frozen=True)
class _Cluster:
    text: str
    font: int  # index into _Chain.fonts
    level: int  # resolved bidi embedding level
    space: bool  # whitespace: dropped at the ends of lines
    break_after: bool  # a line may break after this cluster


def _itemize(text: str, chain: _Chain) -> list[list[_Cluster]]:
    """Split into paragraphs (hard breaks) of clusters with a font, a level and break points."""
    paragraphs: list[list[str]] = [[]]
    for cluster in _CLUSTER_RE.findall(text):
        if cluster in _HARD_BREAKS:
            paragraphs.append([])
        else:
            paragraphs[-1].append(cluster)
    result: list[list[_Cluster]] = []
    for clusters in paragraphs:
        while clusters and clusters[0].isspace():
            clusters.pop(0)
        while clusters and clusters[-1].isspace():
            clusters.pop()
        fonts = _choose_fonts(clusters, chain)
        levels = _bidi_levels([_bidi_class(c) for c in clusters])
        breaks = _break_opportunities(clusters)
        result.append(
            [
                _Cluster(c, f, lv, c.isspace(), b)
                for c, f, lv, b in zip(clusters, fonts, levels, breaks, strict=True)
            ]
        )
    # Blank lines between paragraphs still count as lines; blank edges do not.
    while result and not result[0]:
        result.pop(0)
    while result and not result[-1]:
        result.pop()
    return result


def _needed(cluster: str) -> list[int]:
    return [ord(ch) for ch in cluster if not _IGNORABLE_RE.match(ch)]


def _covers(chain: _Chain, index: int, needed: Iterable[int]) -> bool:
    coverage = _coverage(str(chain.fonts[index]))
    return all(cp in coverage for cp in needed)


def _wants_emoji(cluster: str) -> bool:
    if "\ufe0e" in cluster:  # text presentation asked for explicitly
        return False
    return bool(_EMOJI_PRESENTATION_RE.search(cluster)) or (
        "\u200d" in cluster and bool(regex.search(r"\p{Extended_Pictographic}", cluster))
    )


def _is_common(cluster: str) -> bool:
    """Spaces, punctuation, digits and symbols: they may take the font of the text around."""
    return not any(unicodedata.category(ch)[0] in "LM" for ch in cluster)


def _choose_fonts(clusters: Sequence[str], chain: _Chain) -> list[int]:
    chosen: list[int] = []
    previous: int | None = None
    for cluster in clusters:
        needed = _needed(cluster)
        font: int | None = None
        if _wants_emoji(cluster) and _covers(chain, chain.emoji_index, needed):
            font = chain.emoji_index
        elif (
            previous is not None
            and previous != chain.emoji_index
            and _is_common(cluster)
            and _covers(chain, previous, needed)
        ):
            # Keeps "مرحبا 123!" in one font and one shaping run, as browsers do.
            font = previous
        else:
            for index in range(len(chain.fonts)):
                if _covers(chain, index, needed):
                    font = index
                    break
        if font is None:
            missing = next(
                (
                    cp
                    for cp in needed
                    if not any(_covers(chain, i, [cp]) for i in range(len(chain.fonts)))
                ),
                needed[0] if needed else 0,
            )
            raise CaptionRejected(
                f"the caption contains a character no font can draw (U+{missing:04X})",
                code="caption_unsupported_character",
            )
        chosen.append(font)
        previous = font
    return chosen


def _break_opportunities(clusters: Sequence[str]) -> list[bool]:
    breaks = [False] * len(clusters)
    for i in range(len(clusters) - 1):
        here, after = clusters[i], clusters[i + 1]
        if after.isspace():
            continue
        if here.isspace():
            breaks[i] = True
        elif after[0] in _NO_BREAK_BEFORE or here[-1] in _NO_BREAK_AFTER:
            continue
        elif _is_wide(here) or _is_wide(after):
            breaks[i] = True
        elif here[-1] in _BREAK_AFTER_DASHES and i > 0 and not clusters[i - 1].isspace():
            breaks[i] = True
    return breaks


def _is_wide(cluster: str) -> bool:
    # Ideographs, kana, Hangul and emoji break between characters (no spaces in CJK text).
    return unicodedata.east_asian_width(cluster[0]) in ("W", "F")


# ---------------------------------------------------------------------------------------------
# Bidi: the implicit part of UAX #9 (rules W1–W7, N1–N2, I1–I2) on clusters


def _bidi_class(cluster: str) -> str:
    kind = unicodedata.bidirectional(cluster[0])
    if kind in _EXPLICIT_CLASSES or kind == "NSM" and len(cluster) == 1:
        return "ON"
    return kind or "ON"


def _paragraph_level(classes: Sequence[str]) -> int:
    for kind in classes:
        if kind == "L":
            return 0
        if kind in _RTL_CLASSES:
            return 1
    return 0


def _bidi_levels(classes: Sequence[str]) -> list[int]:
    base = _paragraph_level(classes)
    sos = "R" if base % 2 else "L"
    types = list(classes)
    n = len(types)
    # W1: a lone non-spacing mark takes the type of what precedes it.
    for i in range(n):
        if types[i] == "NSM":
            types[i] = types[i - 1] if i else sos
    # W2, W3: European numbers after Arabic letters are Arabic numbers; AL becomes R.
    last_strong = sos
    for i in range(n):
        if types[i] in ("L", "R", "AL"):
            last_strong = types[i]
        elif types[i] == "EN" and last_strong == "AL":
            types[i] = "AN"
    types = ["R" if t == "AL" else t for t in types]
    # W4: a single separator between two numbers of the same kind joins them.
    for i in range(1, n - 1):
        before, here, after = types[i - 1], types[i], types[i + 1]
        if here == "ES" and before == after == "EN":
            types[i] = "EN"
        elif here == "CS" and before == after and before in ("EN", "AN"):
            types[i] = before
    # W5: terminators (%, $, °) next to European numbers are numbers.
    i = 0
    while i < n:
        if types[i] == "ET":
            j = i
            while j < n and types[j] == "ET":
                j += 1
            if (i > 0 and types[i - 1] == "EN") or (j < n and types[j] == "EN"):
                types[i:j] = ["EN"] * (j - i)
            i = j
        else:
            i += 1
    # W6: remaining separators and terminators are neutral.
    types = ["ON" if t in ("ES", "ET", "CS") else t for t in types]
    # W7: European numbers in a left-to-right context are left-to-right.
    last_strong = sos
    for i in range(n):
        if types[i] in ("L", "R"):
            last_strong = types[i]
        elif types[i] == "EN" and last_strong == "L":
            types[i] = "L"

    # N1, N2: neutrals between two strongs of one direction take it (numbers count as R);
    # otherwise the paragraph's direction.
    def strong(t: str) -> str | None:
        if t == "L":
            return "L"
        if t in ("R", "EN", "AN"):
            return "R"
        return None

    i = 0
    while i < n:
        if strong(types[i]) is None:
            j = i
            while j < n and strong(types[j]) is None:
                j += 1
            before = strong(types[i - 1]) if i > 0 else sos
            after = strong(types[j]) if j < n else sos
            fill = before if before == after else sos
            types[i:j] = [fill or sos] * (j - i)
            i = j
        else:
            i += 1
    # I1, I2: implicit levels.
    levels: list[int] = []
    for t in types:
        if base % 2 == 0:
            levels.append(base + (1 if t == "R" else 2 if t in ("AN", "EN") else 0))
        else:
            levels.append(base + (1 if t in ("L", "EN", "AN") else 0))
    return levels


def _visual_order(levels: Sequence[int]) -> list[int]:
    """Rule L2 over runs: indices of `levels` in display order, left to right."""
    order = list(range(len(levels)))
    if not levels:
        return order
    highest = max(levels)
    lowest_odd = min((lv for lv in levels if lv % 2), default=highest + 1)
    for level in range(highest, lowest_odd - 1, -1):
        i = 0
        while i < len(order):
            if levels[order[i]] >= level:
                j = i
                while j < len(order) and levels[order[j]] >= level:
                    j += 1
                order[i:j] = reversed(order[i:j])
                i = j
            else:
                i += 1
    return order


# ---------------------------------------------------------------------------------------------
# Measuring and laying out at one size


@dataclass(frozen=True)
class _Run:
    text: str
    font: int
    level: int


def _runs(clusters: Sequence[_Cluster]) -> list[_Run]:
    runs: list[_Run] = []
    for cluster in clusters:
        if runs and runs[-1].font == cluster.font and runs[-1].level == cluster.level:
            last = runs[-1]
            runs[-1] = _Run(last.text + cluster.text, last.font, last.level)
        else:
            runs.append(_Run(cluster.text, cluster.font, cluster.level))
    return runs


class _Measurer:
    """Advances and ink boxes of runs, memoised for one caption (sizes are bisected)."""

    def __init__(self, chain: _Chain) -> None:
        self.chain = chain
        self._advance: dict[tuple[str, int, int, str], float] = {}
        self._ink: dict[tuple[str, int, int, str], tuple[float, float, float, float]] = {}

    def is_emoji(self, font: int) -> bool:
        return font == self.chain.emoji_index

    def advance(self, run: _Run, size: int) -> float:
        direction = "rtl" if run.level % 2 else "ltr"
        key = (run.text, run.font, size, direction)
        cached = self._advance.get(key)
        if cached is None:
            if self.is_emoji(run.font):
                font = _font(str(self.chain.fonts[run.font]), EMOJI_STRIKE_PX)
                cached = font.getlength(run.text, direction=direction) * _emoji_scale(size)
            else:
                font = _font(str(self.chain.fonts[run.font]), size)
                cached = font.getlength(run.text, direction=direction)
            self._advance[key] = cached
        return cached

    def ink(self, run: _Run, size: int) -> tuple[float, float, float, float]:
        """(left, top, right, bottom) of the run's ink from its pen origin on the baseline."""
        direction = "rtl" if run.level % 2 else "ltr"
        key = (run.text, run.font, size, direction)
        cached = self._ink.get(key)
        if cached is None:
            if self.is_emoji(run.font):
                font = _font(str(self.chain.fonts[run.font]), EMOJI_STRIKE_PX)
                scale = _emoji_scale(size)
                box = font.getbbox(run.text, anchor="ls", direction=direction)
                cached = (box[0] * scale, box[1] * scale, box[2] * scale, box[3] * scale)
            else:
                font = _font(str(self.chain.fonts[run.font]), size)
                box = font.getbbox(run.text, anchor="ls", direction=direction)
                cached = (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
            self._ink[key] = cached
        return cached

    def width(self, clusters: Sequence[_Cluster], size: int) -> float:
        return sum(self.advance(run, size) for run in _runs(clusters))


def _pieces(clusters: Sequence[_Cluster], split_all: bool) -> list[list[_Cluster]]:
    """Unbreakable pieces (a word and its trailing spaces); every cluster when split_all."""
    pieces: list[list[_Cluster]] = [[]]
    for i, cluster in enumerate(clusters):
        pieces[-1].append(cluster)
        last = i == len(clusters) - 1
        next_is_space = not last and clusters[i + 1].space
        if not last and (cluster.break_after or (split_all and not next_is_space)):
            pieces.append([])
    return pieces


def _strip(line: Sequence[_Cluster]) -> list[_Cluster]:
    start, end = 0, len(line)
    while start < end and line[start].space:
        start += 1
    while end > start and line[end - 1].space:
        end -= 1
    return list(line[start:end])


def _wrap_pieces(
    paragraph: Sequence[_Cluster], size: int, avail: float, measure: _Measurer, emergency: bool
) -> list[list[_Cluster]]:
    """The paragraph's unbreakable pieces; in an emergency, words too wide for a line split."""
    pieces: list[list[_Cluster]] = []
    for piece in _pieces(paragraph, split_all=False):
        if emergency and measure.width(_strip(piece), size) > avail:
            pieces.extend(_pieces(piece, split_all=True))
        else:
            pieces.append(piece)
    return pieces


def _wrap(
    pieces: Sequence[Sequence[_Cluster]], size: int, avail: float, measure: _Measurer
) -> list[list[_Cluster]]:
    """Greedy line filling: the fewest lines, the last one often short."""
    lines: list[list[_Cluster]] = []
    current: list[_Cluster] = []
    for piece in pieces:
        candidate = current + list(piece)
        if current and measure.width(_strip(candidate), size) > avail:
            lines.append(_strip(current))
            current = list(piece)
        else:
            current = candidate
    lines.append(_strip(current))
    return lines


class _Segments:
    """Candidate lines of one paragraph: pieces i..j-1 joined and stripped, widths memoised."""

    def __init__(self, pieces: Sequence[Sequence[_Cluster]], size: int, measure: _Measurer) -> None:
        self.pieces = pieces
        self.size = size
        self.measure = measure
        self._width: dict[tuple[int, int], float] = {}

    def line(self, i: int, j: int) -> list[_Cluster]:
        return _strip([cluster for piece in self.pieces[i:j] for cluster in piece])

    def width(self, i: int, j: int) -> float:
        cached = self._width.get((i, j))
        if cached is None:
            cached = self._width[(i, j)] = self.measure.width(self.line(i, j), self.size)
        return cached


def _balanced_splits(segments: _Segments, count: int, limit: float) -> Iterator[tuple[int, ...]]:
    """Splits of the pieces into `count` lines none wider than `limit`, best first.

    A split is the tuple of its lines' end indices. Best means the narrowest widest line, like
    CSS `text-wrap: balance`, then the least sum of squared widths (the most even lines), then
    the latest breaks (fuller first lines, as greedy filling gives). Widths are measured on
    whole shaped lines (kerning, joining, fallback fonts), never summed from pieces; they grow
    as pieces are added, which bounds the search. The first split comes from a dynamic
    programme; the next few, wanted only when a split does not fit the box, from ranking the
    splits enumerated within the same bounds.
    """
    n = len(segments.pieces)
    # Line l may start at piece index in [earliest[l], latest[l]]: the latest start leaves the
    # prefix in l greedy lines, the earliest leaves the suffix in count - l lines filled from
    # the end. Only lines between these windows are measured.
    latest, i = [0], 0
    for _ in range(count - 1):
        j = min(i + 1, n)
        while j < n and segments.width(i, j + 1) <= limit:
            j += 1
        latest.append(j)
        i = j
    earliest, j = [n], n
    for _ in range(count - 1):
        i = max(j - 1, 0)
        while i > 0 and segments.width(i - 1, j) <= limit:
            i -= 1
        earliest.append(i)
        j = i
    earliest = [0, *reversed(earliest[1:])]
    if any(lo > hi for lo, hi in zip(earliest, latest, strict=True)):
        return  # widths not monotone here (unusual shaping): keep the greedy split
    starts = [range(lo, hi + 1) for lo, hi in zip(earliest, latest, strict=True)]
    ends = [*starts[1:], range(n, n + 1)]

    def lines_from(line: int, i: int) -> Iterator[tuple[int, float]]:
        for j in ends[line]:
            if j > i:
                w = segments.width(i, j)
                if w > limit:
                    break
                yield j, w

    def solve(cost: Callable[[float, float], float], ceiling: float) -> tuple[int, ...] | None:
        """Least total cost over `count` lines; on a tie the later break wins (`<=`)."""
        best = {0: 0.0}
        back: list[dict[int, int]] = []
        for line in range(count):
            nxt: dict[int, float] = {}
            came: dict[int, int] = {}
            for i in sorted(best):
                for j, w in lines_from(line, i):
                    total = cost(best[i], w)
                    if w <= ceiling and total <= nxt.get(j, math.inf):
                        nxt[j], came[j] = total, i
            best = nxt
            back.append(came)
        if n not in best:
            return None
        split, j = [], n
        for came in reversed(back):
            split.append(j)
            j = came[j]
        return tuple(reversed(split))

    narrowest = solve(lambda total, w: max(total, w), limit)
    if narrowest is None:
        return
    widest = max(_split_widths(segments, narrowest))
    first = solve(lambda total, w: total + w * w, widest) or narrowest
    yield first
    found: list[tuple[int, ...]] = []

    def enumerate_from(line: int, i: int, prefix: tuple[int, ...]) -> None:
        if len(found) >= BALANCE_ENUMERATION_CAP:
            return
        if line == count:
            found.append(prefix)
            return
        for j, _ in lines_from(line, i):
            enumerate_from(line + 1, j, (*prefix, j))

    enumerate_from(0, 0, ())

    def rank(split: tuple[int, ...]) -> tuple[float, float, tuple[int, ...]]:
        widths = _split_widths(segments, split)
        return max(widths), sum(w * w for w in widths), tuple(-end for end in split)

    yield from sorted((s for s in found if s != first), key=rank)[: BALANCE_TRIES - 1]


def _split_widths(segments: _Segments, split: Sequence[int]) -> list[float]:
    return [segments.width(i, j) for i, j in zip((0, *split), split, strict=False)]


def _balanced_wrappings(
    paragraphs: Sequence[Sequence[_Cluster]],
    size: int,
    avail: float,
    measure: _Measurer,
    emergency: bool,
) -> Iterator[list[list[_Cluster]]]:
    """Balanced line sets for the whole caption, best first, each paragraph in as many lines as
    greedy filling gives it (so never more lines); at most BALANCE_TRIES of them."""
    streams: list[Iterator[list[list[_Cluster]]]] = []
    for paragraph in paragraphs:
        if not paragraph:
            streams.append(iter([[[]]]))
            continue
        pieces = _wrap_pieces(paragraph, size, avail, measure, emergency)
        greedy = _wrap(pieces, size, avail, measure)
        if len(greedy) == 1:
            streams.append(iter([greedy]))
            continue
        segments = _Segments(pieces, size, measure)
        limit = max(measure.width(line, size) for line in greedy)
        splits = _balanced_splits(segments, len(greedy), limit)
        lines = (
            [segments.line(i, j) for i, j in zip((0, *split), split, strict=False)]
            for split in splits
        )
        streams.append(itertools.chain(lines, [greedy]))
    # The best split of every paragraph nearly always fits: the alternatives are ranked only
    # when it does not. Paragraphs then step through theirs together, the k-th layout taking
    # each paragraph's k-th best split (or its last); a hard break rarely needs more.
    options = [[next(stream)] for stream in streams]
    yield [line for choices in options for line in choices[0]]
    for choices, stream in zip(options, streams, strict=True):
        choices.extend(itertools.islice(stream, BALANCE_TRIES - 1))
    for rank in range(1, max(len(choices) for choices in options)):
        yield [line for choices in options for line in choices[min(rank, len(choices) - 1)]]


@dataclass(frozen=True)
class _Line:
    runs: tuple[_Run, ...]  # visual order, left to right
    advances: tuple[float, ...]
    width: float
    ink_left: float
    ink_right: float
    ink_top: float  # negative: above the baseline
    ink_bottom: float
    text: str


def _shape_line(clusters: Sequence[_Cluster], size: int, measure: _Measurer) -> _Line:
    logical = _runs(clusters)
    order = _visual_order([run.level for run in logical])
    runs = tuple(logical[i] for i in order)
    advances = tuple(measure.advance(run, size) for run in runs)
    pen = 0.0
    left, right, top, bottom = math.inf, -math.inf, 0.0, 0.0
    for run, advance in zip(runs, advances, strict=True):
        ink = measure.ink(run, size)
        if ink[2] > ink[0] or ink[3] > ink[1]:
            left, right = min(left, pen + ink[0]), max(right, pen + ink[2])
            top, bottom = min(top, ink[1]), max(bottom, ink[3])
        pen += advance
    if left > right:  # no ink at all (spaces only)
        left, right = 0.0, pen
    text = "".join(c.text for c in clusters)
    return _Line(runs, advances, pen, left, right, top, bottom, text)


def _avail(style: TextStyle, size: int, box_w: int) -> float:
    """Width lines may take at `size`: the box less the stroke and the edge margin each side."""
    return box_w - 2 * (_stroke_at(style, size) + EDGE_MARGIN_PX)


def _layout_at(
    paragraphs: Sequence[Sequence[_Cluster]],
    size: int,
    box: tuple[int, int],
    style: TextStyle,
    measure: _Measurer,
    *,
    emergency: bool,
) -> CaptionFit | None:
    """Greedy wrapping at `size`, placed in the box; None when it does not fit."""
    avail = _avail(style, size, box[0])
    if avail <= 0:
        return None
    wrapped: list[list[_Cluster]] = []
    for paragraph in paragraphs:
        if paragraph:
            pieces = _wrap_pieces(paragraph, size, avail, measure, emergency)
            wrapped.extend(_wrap(pieces, size, avail, measure))
        else:
            wrapped.append([])
        if len(wrapped) > style.max_lines:
            return None
    return _place(wrapped, size, box, style, measure)


def _place(
    wrapped: Sequence[Sequence[_Cluster]],
    size: int,
    box: tuple[int, int],
    style: TextStyle,
    measure: _Measurer,
) -> CaptionFit | None:
    """Shape and position the given lines in the box; None when their ink does not fit."""
    box_w, box_h = box
    stroke = _stroke_at(style, size)
    margin = stroke + EDGE_MARGIN_PX
    avail = _avail(style, size, box_w)
    if avail <= 0 or len(wrapped) > style.max_lines:
        return None
    lines = [_shape_line(clusters, size, measure) for clusters in wrapped]
    for line in lines:
        if max(line.width, line.ink_right - line.ink_left) > avail:
            return None
    # Baselines: a fixed pitch, widened where one line's ink would meet the next one's.
    pitch = LINE_PITCH_EM * size
    gap = 2 * stroke + LINE_INK_GAP_EM * size
    baselines = [0.0]
    for upper, lower in zip(lines, lines[1:], strict=False):
        baselines.append(baselines[-1] + max(pitch, upper.ink_bottom - lower.ink_top + gap))
    ink_top = min(b + line.ink_top for b, line in zip(baselines, lines, strict=True)) - margin
    ink_bottom = max(b + line.ink_bottom for b, line in zip(baselines, lines, strict=True)) + margin
    if ink_bottom - ink_top > box_h:
        return None
    # Centre the ink (not the font's line boxes) vertically: display fonts' metrics vary wildly.
    shift = (box_h - (ink_bottom - ink_top)) / 2 - ink_top
    placed: list[PlacedRun] = []
    for line, baseline in zip(lines, baselines, strict=True):
        if style.align == "left":
            x = float(margin)
        elif style.align == "right":
            x = box_w - margin - line.width
        else:
            x = (box_w - line.width) / 2
        # Overhanging ink (swashes, italics) is pulled back inside the box.
        x = max(x, margin - line.ink_left)
        x = min(x, box_w - margin - line.ink_right)
        for run, advance in zip(line.runs, line.advances, strict=True):
            placed.append(
                PlacedRun(
                    text=run.text,
                    font=measure.chain.fonts[run.font],
                    emoji=measure.is_emoji(run.font),
                    direction="rtl" if run.level % 2 else "ltr",
                    x=round(x, 2),
                    baseline=round(baseline + shift, 2),
                )
            )
            x += advance
    return CaptionFit(size, stroke, tuple(line.text for line in lines), tuple(placed))


def _paste_emoji(layer: Image.Image, run: PlacedRun, size: int) -> None:
    font = _font(str(run.font), EMOJI_STRIKE_PX)
    left, top, right, bottom = font.getbbox(run.text, anchor="ls", direction=run.direction)
    if right <= left or bottom <= top:
        return
    glyphs = Image.new("RGBA", (right - left, bottom - top), (0, 0, 0, 0))
    ImageDraw.Draw(glyphs).text(
        (-left, -top),
        run.text,
        font=font,
        anchor="ls",
        direction=run.direction,
        embedded_color=True,
    )
    scale = _emoji_scale(size)
    width = max(1, round(glyphs.width * scale))
    height = max(1, round(glyphs.height * scale))
    # Pillow resamples RGBA with premultiplied alpha, so edges do not darken.
    scaled = glyphs.resize((width, height), Image.Resampling.LANCZOS)
    x, y = round(run.x + left * scale), round(run.baseline + top * scale)
    # alpha_composite refuses negative destinations; rounding can put an edge pixel at -1.
    crop_x, crop_y = max(0, -x), max(0, -y)
    if crop_x or crop_y:
        scaled = scaled.crop((crop_x, crop_y, scaled.width, scaled.height))
    layer.alpha_composite(scaled, dest=(x + crop_x, y + crop_y))
