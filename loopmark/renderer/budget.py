"""GIF size budgets: the largest GIF a visitor should get, and the steps that bring a render under.

Messaging apps and social sites refuse, or quietly re-encode, GIFs above their own limits (the
README's "GIF size budgets" lists what we assume of each). A template (or the brand, for every
template and visitors' clips) names a budget in bytes; a render whose GIF is over it steps down,
one step at a time, until the GIF fits:

1. every second frame, each kept frame showing as long as the two it stands for (the delays are
   summed, so the loop lasts exactly as long), when that leaves at least BUDGET_MIN_FPS;
2. then the width, BUDGET_WIDTH_FACTOR at a time (at most BUDGET_WIDTH_STEPS steps, never below
   OUTPUT_MIN_WIDTH): the composed frames scaled down (Lanczos), mapped onto the template's own
   palette through its look-up table and stabilised, as the caption's pixels are. A width that
   its area says is far over the budget is skipped unmade (BUDGET_SKIP_FACTOR).

A GIF within its budget is never touched (same bytes as with no budget). The steps depend only on
the render's inputs, so the same inputs give the same bytes. When even the smallest step is over
the budget, the smallest is kept and recorded with ``fits: false``: the visitor still gets a GIF
(and the MP4, far smaller), which is more use to them than an error they cannot act on.
Only the GIF steps down: the MP4, poster, thumbnail and share card are made from the full frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from loopmark.renderer.quantize import lookup, stabilise
from loopmark.renderer.templates import OUTPUT_MIN_WIDTH

BUDGET_FRAME_STEP = 2  # keep every second frame
BUDGET_MIN_FPS = 6.0  # frames are dropped only while the GIF keeps at least this frame rate
BUDGET_WIDTH_FACTOR = 0.8
BUDGET_WIDTH_STEPS = 5  # 0.8⁵ ≈ 0.33: a 480 px template goes down to 156 px at most
# A GIF's bytes follow its area closely, a little above it (measured on the demo templates and
# phone clips, 0.8× the width gave 0.66–0.71× the bytes, 0.64× the area): a width whose bytes,
# predicted by area from the last GIF made, are over the budget by more than this factor is not
# made at all (the smallest width always is). A width skipped so could not have fitted (bench:
# the same bytes on every case as making each width).
BUDGET_SKIP_FACTOR = 1.3

# Encodes (frames, height, width) palette indices with one delay (centiseconds) a frame.
GifEncoder = Callable[[NDArray[np.uint8], Sequence[int]], bytes]


@dataclass(frozen=True)
class BudgetStep:
    """One way of making the GIF: every ``frame_step``-th frame at ``width`` pixels."""

    frame_step: int
    width: int


@dataclass(frozen=True)
class BudgetOutcome:
    """What a budget did to a render's GIF: recorded with the render (``budget`` in its JSON)."""

    max_bytes: int
    fits: bool  # the GIF is within the budget (false: the smallest step was still over it)
    frame_step: int  # 1: every frame; 2: every second frame
    frames: int  # the GIF's frames
    width: int  # the GIF's size (the MP4, poster and card keep the render's own)
    height: int
    bytes: int  # the GIF's bytes
    full_bytes: int  # the GIF's bytes before any step (equal to ``bytes`` when none was needed)
    attempts: int  # GIFs encoded, the first (full) one included

    @property
    def stepped(self) -> bool:
        """Whether the GIF stepped down (it is not the full one)."""
        return self.attempts > 1

    def to_json(self) -> dict[str, Any]:
        return {
            "max_bytes": self.max_bytes,
            "fits": self.fits,
            "stepped": self.stepped,
            "frame_step": self.frame_step,
            "frames": self.frames,
            "width": self.width,
            "height": self.height,
            "bytes": self.bytes,
            "full_bytes": self.full_bytes,
            "attempts": self.attempts,
        }


def budget_steps(width: int, frame_count: int, fps: float) -> Iterator[BudgetStep]:
    """The steps after the full GIF, in the order they are tried (see the module's docstring)."""
    frame_step = 1
    if fps / BUDGET_FRAME_STEP >= BUDGET_MIN_FPS and frame_count >= 2 * BUDGET_FRAME_STEP:
        frame_step = BUDGET_FRAME_STEP
        yield BudgetStep(frame_step, width)
    for k in range(1, BUDGET_WIDTH_STEPS + 1):
        narrower = round(width * BUDGET_WIDTH_FACTOR**k)
        narrower -= narrower % 2
        if narrower < OUTPUT_MIN_WIDTH:
            return
        yield BudgetStep(frame_step, narrower)


def stepped_delays(delays_cs: Sequence[int], frame_step: int) -> list[int]:
    """Each kept frame's delay: the sum of the delays of the frames it stands for."""
    return [sum(delays_cs[i : i + frame_step]) for i in range(0, len(delays_cs), frame_step)]


def scaled_height(width: int, height: int, narrower: int) -> int:
    return max(2, round(height * narrower / width))


def fit_gif_budget(
    gif: bytes,
    max_bytes: int,
    *,
    composed: NDArray[np.uint8] | Callable[[], NDArray[np.uint8]],
    indices: NDArray[np.uint8],
    palette: NDArray[np.uint8],
    lut: NDArray[np.uint8],
    stabilise_distance: float,
    delays_cs: Sequence[int],
    fps: float,
    encode: GifEncoder,
    remap: bool = False,
) -> tuple[bytes, BudgetOutcome]:
    """The render's GIF within ``max_bytes`` if a step gets it there, else its smallest step.

    ``gif`` is the full GIF, made from ``indices`` (the render's palette indices) with
    ``delays_cs``; ``composed`` are the unquantised frames they stand for (or a function that makes
    them, called only when the GIF is over budget); ``encode`` makes a GIF
    the way the render made ``gif`` (the same encoder and optimiser). ``remap``: every step is
    mapped afresh onto ``palette`` (a template with a palette per span, whose ``indices`` hold
    "leave what is shown" pixels that mean nothing once frames are dropped)."""
    count, height, width = indices.shape
    outcome = BudgetOutcome(
        max_bytes=max_bytes,
        fits=len(gif) <= max_bytes,
        frame_step=1,
        frames=count,
        width=width,
        height=height,
        bytes=len(gif),
        full_bytes=len(gif),
        attempts=1,
    )
    if outcome.fits:
        return gif, outcome
    if callable(composed):  # made only when a step is needed
        composed = composed()
    attempts = 1
    steps = list(budget_steps(width, count, fps))
    for step in steps:
        # Narrower at the same frames: bytes by area, from the last GIF made.
        predicted = outcome.bytes * (step.width / outcome.width) ** 2
        narrower = step.frame_step == outcome.frame_step and step.width < outcome.width
        if narrower and step is not steps[-1] and predicted > max_bytes * BUDGET_SKIP_FACTOR:
            continue  # far over: the next width, without making this one
        kept = slice(None, None, step.frame_step)
        if step.width == width and not remap:
            step_indices = indices[kept]
            step_height = height
        else:
            step_height = scaled_height(width, height, step.width)
            truth = composed[kept]
            if step.width != width:
                truth = _scaled(truth, step.width, step_height)
            step_indices = stabilise(
                lookup(lut, truth), truth, palette, distance=stabilise_distance
            )
        gif = encode(step_indices, stepped_delays(delays_cs, step.frame_step))
        attempts += 1
        outcome = BudgetOutcome(
            max_bytes=max_bytes,
            fits=len(gif) <= max_bytes,
            frame_step=step.frame_step,
            frames=len(step_indices),
            width=step.width,
            height=step_height,
            bytes=len(gif),
            full_bytes=outcome.full_bytes,
            attempts=attempts,
        )
        if outcome.fits:
            break
    return gif, outcome


def _scaled(frames: NDArray[np.uint8], width: int, height: int) -> NDArray[np.uint8]:
    """RGB frames scaled to ``width`` × ``height`` (Lanczos: deterministic, sharp shrinking)."""
    out = np.empty((len(frames), height, width, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        image = Image.fromarray(frame).resize((width, height), Image.Resampling.LANCZOS)
        out[i] = np.asarray(image)
    return out
