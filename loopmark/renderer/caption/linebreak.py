"""Caption line breaking: grapheme clusters, paragraphs and where a line may break.

Rules in the spirit of UAX #14 and kinsoku, on grapheme clusters: break after spaces, around
wide (CJK, emoji) clusters and after a dash inside a word; never before closing punctuation and
small kana, nor after opening brackets. Hard breaks end a paragraph.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import regex

_CLUSTER_RE = regex.compile(r"\X")
_HARD_BREAKS = frozenset({"\n", "\r", "\r\n", "\u2028", "\u2029", "\x85"})
_NO_BREAK_BEFORE = frozenset(
    ")]}>.,!?:;%'\"’”»、。，．！？：；）］｝〕〉》」』】〙〗ー・…‥々〻ゝゞヽヾ"
    "ぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶ"
)
_NO_BREAK_AFTER = frozenset("([{<‘“«（［｛〔〈《「『【〘〖")
_BREAK_AFTER_DASHES = frozenset("-‐–—/")


def paragraphs(text: str) -> list[list[str]]:
    """The text's paragraphs (split at hard breaks) as grapheme clusters, spaces trimmed."""
    result: list[list[str]] = [[]]
    for cluster in _CLUSTER_RE.findall(text):
        if cluster in _HARD_BREAKS:
            result.append([])
        else:
            result[-1].append(cluster)
    for clusters in result:
        while clusters and clusters[0].isspace():
            clusters.pop(0)
        while clusters and clusters[-1].isspace():
            clusters.pop()
    return result


def break_opportunities(clusters: Sequence[str]) -> list[bool]:
    """For each cluster, whether a line may break after it (never after the last)."""
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
