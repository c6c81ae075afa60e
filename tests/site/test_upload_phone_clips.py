"""Phone clips through the upload API to a done GIF: HEVC 8- and 10-bit, MOV and MP4, rotation
metadata (a portrait GIF within the size cap), variable frame rate, HDR (tone-mapped)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests import phone_clips
from tests.site.test_uploads import done_json, fetch, render, upload

CLIPS: dict[str, tuple[Callable[[Path], Path], tuple[int, int]]] = {
    "hevc-8bit-mov": (lambda d: phone_clips.hevc_mov(d), (320, 180)),
    "hevc-10bit-rotated-mov": (
        lambda d: phone_clips.hevc_mov(d, ten_bit=True, rotation=90),
        (180, 320),  # portrait, never upscaled (a 1080×1920 clip gives 270×480)
    ),
    "vfr-mp4": (phone_clips.vfr_mp4, (320, 180)),
    "hlg-mov": (lambda d: phone_clips.hdr_mov(d, "arib-std-b67"), (320, 180)),
}


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_phone_clip_becomes_a_gif(client: FlaskClient, tmp_path: Path, name: str) -> None:
    make, size = CLIPS[name]
    body = done_json(
        client, render(client, upload(client, make(tmp_path)), start=0.2, duration=1.0)
    )
    assert (body["width"], body["height"]) == size
    status, gif = fetch(client, body["gif_url"])
    assert status == 200 and gif[:6] == b"GIF89a"
    # Portrait stays portrait in the GIF itself (logical screen width, height).
    assert (int.from_bytes(gif[6:8], "little"), int.from_bytes(gif[8:10], "little")) == size
