"""The MP4 encode: the same frames give the same bytes whatever cores the machine has."""

from __future__ import annotations

import os

import pytest

from loopmark.renderer.prepare import PreparedTemplate
from loopmark.renderer.render import caption_layer, compose_frames
from loopmark.renderer.video import encode_mp4


def test_the_same_frames_give_the_same_mp4_on_one_core_and_on_all(
    small: PreparedTemplate,
) -> None:
    cores = os.sched_getaffinity(0)
    if len(cores) < 2:
        pytest.fail("this test needs a machine with two cores or more")
    frames = compose_frames(small, caption_layer(small, "Same bytes"))
    everywhere = encode_mp4(frames, fps=small.fps)  # x264 would split the work by the core count
    try:
        os.sched_setaffinity(0, {min(cores)})  # the FFmpeg child inherits the one core
        one_core = encode_mp4(frames, fps=small.fps)
    finally:
        os.sched_setaffinity(0, cores)
    assert one_core[4:8] == b"ftyp" and len(one_core) > 1000
    assert one_core == everywhere
