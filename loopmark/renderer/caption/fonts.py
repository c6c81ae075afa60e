"""Caption fonts: the shipped font files, the fallback chain, coverage and each cluster's font.

A template names its brand font; glyphs it lacks fall back through FALLBACK_FONTS, and colour
emoji come from a bitmap font drawn at its one strike size and scaled to the text.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import regex
from PIL import ImageFont

from loopmark.errors import N_, CaptionRejected
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

_PRIVATE_USE_RANGES = ((0xE000, 0xF8FF), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD))
_EMOJI_PRESENTATION_RE = regex.compile(
    r"[\p{Emoji_Presentation}\p{Regional_Indicator}\p{Emoji_Modifier}\uFE0F\u20E3]"
)
_IGNORABLE_RE = regex.compile(r"\p{Default_Ignorable_Code_Point}")


def fonts_dir() -> Path:
    """The fonts shipped in the package (``loopmark/static/fonts``)."""
    return FONTS_DIR


def default_font() -> Path:
    return fonts_dir() / DEFAULT_FONT


@dataclass(frozen=True)
class Chain:
    fonts: tuple[Path, ...]  # brand font first, then the fallbacks; the emoji font last
    emoji_index: int


@functools.lru_cache(maxsize=64)
def font_chain(brand: Path) -> Chain:
    """The brand font, the fallbacks that are not it, then the emoji font. Cached: resolving
    seven paths (``realpath``'s lstat of every component) cost about 2 ms of each render."""
    base = fonts_dir()
    fonts: list[Path] = [brand]
    for name in FALLBACK_FONTS:
        path = base / name
        if path.resolve() != brand.resolve():
            fonts.append(path)
    fonts.append(base / EMOJI_FONT)
    return Chain(tuple(fonts), len(fonts) - 1)


@functools.lru_cache(maxsize=64)
def _coverage(path: str) -> frozenset[int]:
    """Code points the font maps to a glyph; private-use and control points never count."""
    from fontTools.ttLib import TTFont  # type: ignore[import-untyped]

    with TTFont(path, lazy=True) as font:
        cmap = font.getBestCmap() or {}
    return frozenset(
        cp
        for cp in cmap
        if not (cp < 0x20 or 0x7F <= cp <= 0x9F)  # control characters (category Cc)
        and not any(lo <= cp <= hi for lo, hi in _PRIVATE_USE_RANGES)
    )


@functools.lru_cache(maxsize=256)
def face(path: str, size: int) -> ImageFont.FreeTypeFont:
    # The same few fonts and sizes are used for every render: FreeType faces are reused.
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.RAQM)


def emoji_scale(size: int) -> float:
    """Factor from the emoji strike to a text size in pixels."""
    return size * EMOJI_EM_SCALE / EMOJI_STRIKE_PX


def _needed(cluster: str) -> list[int]:
    return [ord(ch) for ch in cluster if not _IGNORABLE_RE.match(ch)]


def _covers(chain: Chain, index: int, needed: Iterable[int]) -> bool:
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


def _font_for(cluster: str, chain: Chain, previous: int | None) -> int | None:
    needed = _needed(cluster)
    if _wants_emoji(cluster) and _covers(chain, chain.emoji_index, needed):
        return chain.emoji_index
    if (
        previous is not None
        and previous != chain.emoji_index
        and _is_common(cluster)
        and _covers(chain, previous, needed)
    ):
        # Keeps "مرحبا 123!" in one font and one shaping run, as browsers do.
        return previous
    return next((i for i in range(len(chain.fonts)) if _covers(chain, i, needed)), None)


def _unsupported(cluster: str, chain: Chain) -> CaptionRejected:
    needed = _needed(cluster)
    missing = next(
        (cp for cp in needed if not any(_covers(chain, i, [cp]) for i in range(len(chain.fonts)))),
        needed[0] if needed else 0,
    )
    return CaptionRejected(
        N_("That caption contains a character we can't draw (U+%(codepoint)s)."),
        params={"codepoint": f"{missing:04X}"},
        code="caption_unsupported_character",
    )


def choose_fonts(clusters: Sequence[str], chain: Chain) -> list[int]:
    """Index into `chain.fonts` for each grapheme cluster; CaptionRejected when none draws one."""
    chosen: list[int] = []
    previous: int | None = None
    for cluster in clusters:
        font = _font_for(cluster, chain, previous)
        if font is None:
            raise _unsupported(cluster, chain)
        chosen.append(font)
        previous = font
    return chosen
