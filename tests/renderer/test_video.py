"""The MP4 encode: the same frames give the same bytes whatever cores the machine has."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pytest
from numpy.typing import NDArray

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


def test_the_render_streams_the_mp4_in_chunks_and_gets_the_very_bytes(
    small: PreparedTemplate, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopmark.renderer import render as render_module
    from loopmark.renderer.render import composed_chunks, render

    monkeypatch.setattr(render_module, "MP4_CHUNK_FRAMES", 3)  # 8 frames: chunks of 3, 3, 2
    layer = caption_layer(small, "Chunked")
    frames = compose_frames(small, layer)
    assert [len(c) for c in composed_chunks(small, layer)] == [3, 3, 2]
    chunks = list(composed_chunks(small, layer, frames=5))
    assert [len(c) for c in chunks][:-1] == [5] * (len(chunks) - 1)
    assert (np.concatenate(chunks) == frames).all()
    assert render(small, "Chunked").mp4 == encode_mp4(frames, fps=small.fps)


def test_a_piece_that_fails_to_be_made_fails_the_encode(small: PreparedTemplate) -> None:
    from loopmark.renderer.video import encode_mp4_chunks

    frames = compose_frames(small, caption_layer(small, "Broken"))

    def pieces() -> Iterator[NDArray[np.uint8]]:
        yield frames[:4]
        raise RuntimeError("no more frames")

    with pytest.raises(RuntimeError, match="no more frames"):
        encode_mp4_chunks(pieces(), width=small.width, height=small.height, fps=small.fps)
