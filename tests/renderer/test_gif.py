"""The GIF encoder: lossless for the indices it is given, with frame-difference transparency."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageSequence

from loopmark.errors import ToolFailed
from loopmark.renderer.gif import encode_gif, frame_delays_cs, gifsicle_optimise
from loopmark.renderer.quantize import TRANSPARENT_INDEX


def random_animation(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 256, size=(256, 3), dtype=np.uint8)
    frames = rng.integers(0, TRANSPARENT_INDEX, size=(6, 40, 64), dtype=np.uint8)
    frames[2] = frames[1]  # a frame where nothing moves
    frames[3] = frames[2]
    frames[3, 10:12, 20:30] = 3  # only a small patch changes
    return frames, palette


def decode(data: bytes) -> tuple[Image.Image, list[np.ndarray], list[int]]:
    image = Image.open(io.BytesIO(data))
    frames, durations = [], []
    for frame in ImageSequence.Iterator(image):
        frames.append(np.asarray(frame.convert("RGB")))
        durations.append(frame.info["duration"])
    return image, frames, durations


def test_encoding_is_lossless_for_the_given_indices() -> None:
    indices, palette = random_animation()
    data = encode_gif(indices, palette, [10] * len(indices))
    image, frames, durations = decode(data)
    assert image.info["loop"] == 0
    assert len(frames) == len(indices)
    for decoded, expected in zip(frames, indices, strict=True):
        assert np.array_equal(decoded, palette[expected])
    assert durations == [100] * len(indices)


def test_unchanged_frames_cost_almost_nothing() -> None:
    still = np.zeros((10, 120, 160), np.uint8)
    still[:, 20:100, 30:130] = 5
    data = encode_gif(still, np.zeros((256, 3), np.uint8), [10] * 10)
    single = encode_gif(still[:1], np.zeros((256, 3), np.uint8), [10])
    # Nine extra frames that change nothing add a few dozen bytes each at most.
    assert len(data) - len(single) < 9 * 40


def test_progress_reports_every_frame() -> None:
    indices, palette = random_animation()
    seen: list[int] = []
    encode_gif(indices, palette, [10] * len(indices), on_frame=seen.append)
    assert seen == list(range(len(indices)))


@pytest.mark.parametrize(
    ("count", "fps", "expected"),
    [(3, 10, [10, 10, 10]), (3, 12, [8, 9, 8]), (12, 12, None), (2, 100, [2, 2])],
)
def test_delays_track_the_timeline(count: int, fps: float, expected: list[int] | None) -> None:
    delays = frame_delays_cs(count, fps)
    assert len(delays) == count
    if expected is not None:
        assert delays == expected
    else:
        assert sum(delays) == 100  # 12 frames at 12 fps last exactly one second


def test_gifsicle_pass_keeps_the_pixels() -> None:
    indices, palette = random_animation()
    indices[2, 0, 0] = (indices[1, 0, 0] + 1) % TRANSPARENT_INDEX  # gifsicle merges still frames
    data = encode_gif(indices, palette, [10] * len(indices))
    optimised = gifsicle_optimise(data, "-O3")
    _, before, _ = decode(data)
    _, after, _ = decode(optimised)
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    assert gifsicle_optimise(data, "") is data


def test_gifsicle_failure_keeps_its_stderr() -> None:
    with pytest.raises(ToolFailed) as excinfo:
        gifsicle_optimise(b"not a gif", "-O1")
    assert "gifsicle" in excinfo.value.reason
    assert excinfo.value.stderr


def test_unknown_gifsicle_level_is_refused() -> None:
    with pytest.raises(ValueError):
        gifsicle_optimise(b"GIF89a", "--lossy=80")
