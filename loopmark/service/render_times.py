"""How long renders take, as measured by the workers that ran them: the ETA of a render that
runs elsewhere (on Lambda, in another process), which this process cannot simulate.

A worker stores its render's wall time (claim to stored media) in the record's media as
``render_seconds``. This process learns from every done record it reads back, per template (an
exponentially weighted mean: recent renders count most, a cold start fades), and once, lazily,
from the most recent done renders in the records, so a fresh process has figures at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from loopmark.errors import LoopmarkError
from loopmark.records.renders import RenderRecord, RenderStatus

log = logging.getLogger(__name__)

# Weight of the newest measurement in the running mean.
SMOOTHING = 0.3
# Done renders read once to seed a fresh process.
SEED_RECORDS = 50
# Templates remembered at most (their ids come from records, so bound them).
MAX_TEMPLATES = 256
MEDIA_FIELD = "render_seconds"


def measured_seconds(record: RenderRecord) -> float | None:
    """The render time a done record carries, if any (older records carry none)."""
    value = (record.media or {}).get(MEDIA_FIELD)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 3600:
        return None
    return float(value)


class RenderTimes:
    """Expected render seconds per template, learnt from done records. Thread-safe."""

    def __init__(self, seed: Callable[[], Iterable[RenderRecord]] | None = None) -> None:
        self._seed = seed
        self._lock = threading.Lock()
        self._by_template: dict[str, float] = {}
        self._overall: float | None = None

    def observe(self, record: RenderRecord) -> None:
        seconds = measured_seconds(record) if record.status == RenderStatus.DONE else None
        if seconds is None:
            return
        with self._lock:
            previous = self._by_template.pop(record.template_id, None)
            if len(self._by_template) >= MAX_TEMPLATES:
                self._by_template.pop(next(iter(self._by_template)))
            self._by_template[record.template_id] = _blend(previous, seconds)
            self._overall = _blend(self._overall, seconds)

    def expected(self, template_id: str) -> float | None:
        """The template's expected render seconds; any template's while it has none yet; None
        before any render was measured."""
        self._seed_once()
        with self._lock:
            return self._by_template.get(template_id, self._overall)

    def remaining(self, template_id: str, progress: float) -> float | None:
        """Seconds left of a render at ``progress`` (0..1), from the expected time."""
        expected = self.expected(template_id)
        if expected is None:
            return None
        return round(expected * (1.0 - min(1.0, max(0.0, progress))), 2)

    def _seed_once(self) -> None:
        with self._lock:
            seed, self._seed = self._seed, None
        if seed is None:
            return
        try:
            # Oldest first, so the newest weigh most in the running means.
            for record in reversed(list(seed())):
                self.observe(record)
        except LoopmarkError as exc:  # an ETA is a nicety: never fail a request for it
            log.warning("render times not seeded from the records: %s", exc.reason)


def _blend(previous: float | None, seconds: float) -> float:
    return seconds if previous is None else previous + SMOOTHING * (seconds - previous)
