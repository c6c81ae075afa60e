"""Caption wrapping: unbreakable pieces and greedy line filling at one size."""

from __future__ import annotations

from collections.abc import Sequence

from loopmark.renderer.caption.itemize import Cluster
from loopmark.renderer.caption.measure import Measurer


def _pieces(clusters: Sequence[Cluster], split_all: bool) -> list[list[Cluster]]:
    """Unbreakable pieces (a word and its trailing spaces); every cluster when split_all."""
    pieces: list[list[Cluster]] = [[]]
    for i, cluster in enumerate(clusters):
        pieces[-1].append(cluster)
        last = i == len(clusters) - 1
        next_is_space = not last and clusters[i + 1].space
        if not last and (cluster.break_after or (split_all and not next_is_space)):
            pieces.append([])
    return pieces


def strip_spaces(line: Sequence[Cluster]) -> list[Cluster]:
    start, end = 0, len(line)
    while start < end and line[start].space:
        start += 1
    while end > start and line[end - 1].space:
        end -= 1
    return list(line[start:end])


def wrap_pieces(
    paragraph: Sequence[Cluster], size: int, avail: float, measure: Measurer, emergency: bool
) -> list[list[Cluster]]:
    """The paragraph's unbreakable pieces; in an emergency, words too wide for a line split."""
    pieces: list[list[Cluster]] = []
    for piece in _pieces(paragraph, split_all=False):
        if emergency and measure.width(strip_spaces(piece), size) > avail:
            pieces.extend(_pieces(piece, split_all=True))
        else:
            pieces.append(piece)
    return pieces


def wrap(
    pieces: Sequence[Sequence[Cluster]], size: int, avail: float, measure: Measurer
) -> list[list[Cluster]]:
    """Greedy line filling: the fewest lines, the last one often short."""
    lines: list[list[Cluster]] = []
    current: list[Cluster] = []
    for piece in pieces:
        candidate = current + list(piece)
        if current and measure.width(strip_spaces(candidate), size) > avail:
            lines.append(strip_spaces(current))
            current = list(piece)
        else:
            current = candidate
    lines.append(strip_spaces(current))
    return lines
