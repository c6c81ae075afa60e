"""Phone-like clips generated from the shared real footage with the bundled FFmpeg (libx265,
zscale): H.264 and HEVC (8- and 10-bit), MOV and MP4, rotation metadata, variable frame rate,
and HDR (HLG and PQ, converted from the SDR footage the way a camera would record it)."""

from __future__ import annotations

from pathlib import Path

from tests.paths import CLIP
from tests.renderer.hostile_videos import _ffmpeg

# 1.5 s of the shared clip at 320×180: quick to encode (HEVC too), real footage.
SOURCE = ["-ss", "1", "-t", "1.5", "-i", f"file:{CLIP}", "-an"]
SMALL = "scale=320:180"
# SDR BT.709 → BT.2020 with an HDR transfer (what a phone in HDR mode records).
TO_HDR = (
    "format=yuv420p10le,"
    "zscale=tin=709:min=709:pin=709:rin=tv:t={transfer}:p=2020:m=2020_ncl:r=tv:npl=100"
)
X265 = "log-level=error"


def h264_mp4(folder: Path) -> Path:
    path = folder / "h264.mp4"
    _ffmpeg(*SOURCE, "-vf", SMALL, "-c:v", "libx264", "-preset", "ultrafast", f"file:{path}")
    return path


def hevc_mov(folder: Path, *, ten_bit: bool = False, rotation: int = 0) -> Path:
    plain = folder / f"hevc{'10' if ten_bit else '8'}-plain.mov"
    pix = "yuv420p10le" if ten_bit else "yuv420p"
    _ffmpeg(
        *SOURCE, "-vf", SMALL, "-c:v", "libx265", "-x265-params", X265, "-preset", "ultrafast",
        "-pix_fmt", pix, "-tag:v", "hvc1", f"file:{plain}",
    )  # fmt: skip
    if not rotation:
        return plain
    path = folder / f"hevc-rot{rotation}.mov"
    _ffmpeg("-display_rotation", str(rotation), "-i", f"file:{plain}", "-c", "copy", f"file:{path}")
    return path


def vfr_mp4(folder: Path) -> Path:
    """Frames kept at irregular intervals, their timestamps untouched (variable frame rate)."""
    path = folder / "vfr.mp4"
    _ffmpeg(
        *SOURCE, "-vf", f"{SMALL},select='lt(mod(n\\,5)\\,3)'", "-fps_mode", "vfr",
        "-c:v", "libx264", "-preset", "ultrafast", f"file:{path}",
    )  # fmt: skip
    return path


def hdr_mov(folder: Path, transfer: str) -> Path:
    """HEVC Main 10 in BT.2020 with ``transfer`` "arib-std-b67" (HLG) or "smpte2084" (PQ)."""
    path = folder / f"hdr-{transfer}.mov"
    params = f"{X265}:colorprim=bt2020:transfer={transfer}:colormatrix=bt2020nc"
    _ffmpeg(
        *SOURCE, "-vf", f"{SMALL},{TO_HDR.format(transfer=transfer)}",
        "-c:v", "libx265", "-x265-params", params, "-preset", "ultrafast",
        "-color_primaries", "bt2020", "-color_trc", transfer, "-colorspace", "bt2020nc",
        "-tag:v", "hvc1", f"file:{path}",
    )  # fmt: skip
    return path
