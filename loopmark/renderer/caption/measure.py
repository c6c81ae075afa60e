"""Caption measuring: advances and ink boxes of shaped runs, memoised for one caption."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import ImageFont

from loopmark.renderer.caption.fonts import EMOJI_STRIKE_PX, Chain, emoji_scale, face
from loopmark.renderer.caption.itemize import Cluster, Run, runs

Box = tuple[float, float, float, float]


class Measurer:
    """Advances and ink boxes of runs, memoised for one caption (sizes are bisected)."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self._advance: dict[tuple[str, int, int, str], float] = {}
        self._ink: dict[tuple[str, int, int, str], Box] = {}

    def is_emoji(self, font: int) -> bool:
        return font == self.chain.emoji_index

    def _face(self, run: Run, size: int) -> tuple[ImageFont.FreeTypeFont, float]:
        """The face to shape `run` with and the factor from its pixels to `size`."""
        path = str(self.chain.fonts[run.font])
        if self.is_emoji(run.font):
            return face(path, EMOJI_STRIKE_PX), emoji_scale(size)
        return face(path, size), 1.0

    def advance(self, run: Run, size: int) -> float:
        key = (run.text, run.font, size, run.direction)
        cached = self._advance.get(key)
        if cached is None:
            font, scale = self._face(run, size)
            cached = font.getlength(run.text, direction=run.direction) * scale
            self._advance[key] = cached
        return cached

    def ink(self, run: Run, size: int) -> Box:
        """(left, top, right, bottom) of the run's ink from its pen origin on the baseline."""
        key = (run.text, run.font, size, run.direction)
        cached = self._ink.get(key)
        if cached is None:
            font, scale = self._face(run, size)
            box = font.getbbox(run.text, anchor="ls", direction=run.direction)
            cached = (box[0] * scale, box[1] * scale, box[2] * scale, box[3] * scale)
            self._ink[key] = cached
        return cached

    def width(self, clusters: Sequence[Cluster], size: int) -> float:
        return sum(self.advance(run, size) for run in runs(clusters))
