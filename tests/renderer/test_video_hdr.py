"""HDR phone clips (HLG, PQ) are tone-mapped to SDR when decoded, so colours are not washed out.

The HDR fixtures are the shared SDR footage converted to BT.2020 HLG/PQ (as a phone records it),
so the SDR original is the reference a good decode should come back to."""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict

import numpy as np
import pytest
from numpy.typing import NDArray

from loopmark.renderer.probe import probe_video
from loopmark.renderer.video import decode_frames
from tests import phone_clips


class DecodeArgs(TypedDict):
    """decode_frames' keyword arguments shared by every decode here."""

    start_s: float
    duration_s: float
    width: int
    height: int
    fps: int
    speed: float
    max_frames: int


DECODE = DecodeArgs(
    start_s=0.2, duration_s=0.5, width=160, height=90, fps=4, speed=1.0, max_frames=3
)


def saturation(frames: NDArray[np.uint8]) -> float:
    as_float = frames.astype(np.float64)
    return float((as_float.max(axis=-1) - as_float.min(axis=-1)).mean())


def difference(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


@pytest.mark.parametrize("transfer", ["arib-std-b67", "smpte2084"])
def test_hdr_is_detected_and_tone_mapped(tmp_path: Path, transfer: str) -> None:
    reference = decode_frames(phone_clips.h264_mp4(tmp_path), **DECODE)
    hdr = phone_clips.hdr_mov(tmp_path, transfer)
    assert probe_video(hdr).hdr_transfer == transfer
    naive = decode_frames(hdr, **DECODE)
    mapped = decode_frames(hdr, tonemap=True, **DECODE)
    # Decoded as if SDR, the picture is washed out; tone-mapped, it is close to the original.
    assert saturation(naive) < 0.6 * saturation(reference)
    assert saturation(mapped) > 0.85 * saturation(reference)
    assert difference(mapped, reference) < 0.5 * difference(naive, reference)


def test_sdr_is_not_flagged(tmp_path: Path) -> None:
    assert probe_video(phone_clips.h264_mp4(tmp_path)).hdr_transfer is None
