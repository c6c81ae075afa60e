"""Caption itemisation: clusters with a font, a bidi level and a break point, grouped into runs.

Everything here is independent of the font size, so it is done once per caption.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from loopmark.renderer.caption.bidi import bidi_class, bidi_levels
from loopmark.renderer.caption.fonts import Chain, choose_fonts
from loopmark.renderer.caption.linebreak import break_opportunities, paragraphs


@dataclass(frozen=True)
class Cluster:
    text: str
    font: int  # index into Chain.fonts
    level: int  # resolved bidi embedding level
    space: bool  # whitespace: dropped at the ends of lines
    break_after: bool  # a line may break after this cluster


@dataclass(frozen=True)
class Run:
    """Consecutive clusters in one font at one level: shaped in one go."""

    text: str
    font: int
    level: int

    @property
    def direction(self) -> str:
        return "rtl" if self.level % 2 else "ltr"


def itemize(text: str, chain: Chain) -> list[list[Cluster]]:
    """Split into paragraphs (hard breaks) of clusters with a font, a level and break points."""
    result: list[list[Cluster]] = []
    for clusters in paragraphs(text):
        fonts = choose_fonts(clusters, chain)
        levels = bidi_levels([bidi_class(c) for c in clusters])
        breaks = break_opportunities(clusters)
        result.append(
            [
                Cluster(c, f, lv, c.isspace(), b)
                for c, f, lv, b in zip(clusters, fonts, levels, breaks, strict=True)
            ]
        )
    # Blank lines between paragraphs still count as lines; blank edges do not.
    while result and not result[0]:
        result.pop(0)
    while result and not result[-1]:
        result.pop()
    return result


def runs(clusters: Sequence[Cluster]) -> list[Run]:
    result: list[Run] = []
    for cluster in clusters:
        if result and result[-1].font == cluster.font and result[-1].level == cluster.level:
            last = result[-1]
            result[-1] = Run(last.text + cluster.text, last.font, last.level)
        else:
            result.append(Run(cluster.text, cluster.font, cluster.level))
    return result
