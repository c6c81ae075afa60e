"""Caption balancing: move line breaks so the widest line is as narrow as possible.

Like CSS `text-wrap: balance`: the same number of lines as greedy filling gives, at the same
size, with no one-word last line when a better split fits.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence

from loopmark.renderer.caption.itemize import Cluster
from loopmark.renderer.caption.measure import Measurer
from loopmark.renderer.caption.wrap import strip_spaces, wrap, wrap_pieces

# Balanced splits tried, best first, before the greedy one when a split's ink does not fit.
BALANCE_TRIES = 8
# Splits enumerated to rank those alternatives; long CJK captions in many lines stop here.
BALANCE_ENUMERATION_CAP = 2000


class Segments:
    """Candidate lines of one paragraph: pieces i..j-1 joined and stripped, widths memoised."""

    def __init__(self, pieces: Sequence[Sequence[Cluster]], size: int, measure: Measurer) -> None:
        self.pieces = pieces
        self.size = size
        self.measure = measure
        self._width: dict[tuple[int, int], float] = {}

    def line(self, i: int, j: int) -> list[Cluster]:
        return strip_spaces([cluster for piece in self.pieces[i:j] for cluster in piece])

    def width(self, i: int, j: int) -> float:
        cached = self._width.get((i, j))
        if cached is None:
            cached = self._width[(i, j)] = self.measure.width(self.line(i, j), self.size)
        return cached


def _balanced_splits(segments: Segments, count: int, limit: float) -> Iterator[tuple[int, ...]]:
    """Splits of the pieces into `count` lines none wider than `limit`, best first.

    A split is the tuple of its lines' end indices. Best means the narrowest widest line, like
    CSS `text-wrap: balance`, then the least sum of squared widths (the most even lines), then
    the latest breaks (fuller first lines, as greedy filling gives). Widths are measured on
    whole shaped lines (kerning, joining, fallback fonts), never summed from pieces; they grow
    as pieces are added, which bounds the search. The first split comes from a dynamic
    programme; the next few, wanted only when a split does not fit the box, from ranking the
    splits enumerated within the same bounds.
    """
    ends = _line_ends(segments, count, limit)
    if ends is None:
        return  # widths not monotone here (unusual shaping): keep the greedy split
    search = _SplitSearch(segments, ends, limit)
    narrowest = search.solve(lambda total, w: max(total, w), limit)
    if narrowest is None:
        return
    widest = max(_split_widths(segments, narrowest))
    first = search.solve(lambda total, w: total + w * w, widest) or narrowest
    yield first

    def rank(split: tuple[int, ...]) -> tuple[float, float, tuple[int, ...]]:
        widths = _split_widths(segments, split)
        return max(widths), sum(w * w for w in widths), tuple(-end for end in split)

    others = (split for split in search.enumerate() if split != first)
    yield from sorted(others, key=rank)[: BALANCE_TRIES - 1]


def _line_ends(segments: Segments, count: int, limit: float) -> list[range] | None:
    """Where each of `count` lines may end; None when no split can be bounded this way.

    Line l may start at piece index in [earliest[l], latest[l]]: the latest start leaves the
    prefix in l greedy lines, the earliest leaves the suffix in count - l lines filled from the
    end. Only lines between these windows are measured.
    """
    n = len(segments.pieces)
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
        return None
    starts = [range(lo, hi + 1) for lo, hi in zip(earliest, latest, strict=True)]
    return [*starts[1:], range(n, n + 1)]


class _SplitSearch:
    """Splits into len(ends) lines, each ending within its window and none wider than limit."""

    def __init__(self, segments: Segments, ends: Sequence[range], limit: float) -> None:
        self.segments = segments
        self.ends = ends
        self.limit = limit

    def lines_from(self, line: int, i: int) -> Iterator[tuple[int, float]]:
        """(end, width) of each line `line` that may start at piece i, narrowest first."""
        for j in self.ends[line]:
            if j > i:
                w = self.segments.width(i, j)
                if w > self.limit:
                    break
                yield j, w

    def solve(
        self, cost: Callable[[float, float], float], ceiling: float
    ) -> tuple[int, ...] | None:
        """Least total cost with no line over `ceiling`; on a tie the later break wins (`<=`)."""
        best = {0: 0.0}
        back: list[dict[int, int]] = []
        for line in range(len(self.ends)):
            nxt: dict[int, float] = {}
            came: dict[int, int] = {}
            for i in sorted(best):
                for j, w in self.lines_from(line, i):
                    total = cost(best[i], w)
                    if w <= ceiling and total <= nxt.get(j, math.inf):
                        nxt[j], came[j] = total, i
            best = nxt
            back.append(came)
        n = len(self.segments.pieces)
        if n not in best:
            return None
        split, j = [], n
        for came in reversed(back):
            split.append(j)
            j = came[j]
        return tuple(reversed(split))

    def enumerate(self) -> list[tuple[int, ...]]:
        """Every split, in search order, up to BALANCE_ENUMERATION_CAP of them."""
        found: list[tuple[int, ...]] = []

        def extend(line: int, i: int, prefix: tuple[int, ...]) -> None:
            if len(found) >= BALANCE_ENUMERATION_CAP:
                return
            if line == len(self.ends):
                found.append(prefix)
                return
            for j, _ in self.lines_from(line, i):
                extend(line + 1, j, (*prefix, j))

        extend(0, 0, ())
        return found


def _split_widths(segments: Segments, split: Sequence[int]) -> list[float]:
    return [segments.width(i, j) for i, j in zip((0, *split), split, strict=False)]


def balanced_wrappings(
    paragraphs: Sequence[Sequence[Cluster]],
    size: int,
    avail: float,
    measure: Measurer,
    emergency: bool,
) -> Iterator[list[list[Cluster]]]:
    """Balanced line sets for the whole caption, best first, each paragraph in as many lines as
    greedy filling gives it (so never more lines); at most BALANCE_TRIES of them."""
    streams: list[Iterator[list[list[Cluster]]]] = []
    for paragraph in paragraphs:
        if not paragraph:
            streams.append(iter([[[]]]))
            continue
        pieces = wrap_pieces(paragraph, size, avail, measure, emergency)
        greedy = wrap(pieces, size, avail, measure)
        if len(greedy) == 1:
            streams.append(iter([greedy]))
            continue
        segments = Segments(pieces, size, measure)
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
