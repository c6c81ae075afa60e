"""FFmpeg as a pure function of bytes: decode a source to RGB frames, build a palette, and
encode an MP4. Each function builds its argv as a list and runs it once.

Frames always travel as raw RGB over pipes, so no temporary files and no caption text are ever
involved; source paths come from the template folder and go through the hardened input options.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from loopmark.errors import ToolFailed
from loopmark.renderer.probe import hardened_input_args
from loopmark.renderer.process import (
    FFMPEG_MEMORY_BYTES,
    FFMPEG_TIMEOUT_SECONDS,
    ffmpeg_exe,
    run_tool,
)

Frames = NDArray[np.uint8]  # (frames, height, width, 3) RGB
MP4_CRF = 23
MP4_PRESET = "veryfast"  # measured: 0.12 s for 36 frames at 480x270 on one core
# x264 splits the work by the machine's core count, and its output depends on the split: one
# thread gives the same bytes on every machine (and a render's CPU is one core anyway).
MP4_THREADS = 1
# HDR (PQ, HLG) to SDR BT.709: to linear light, a tone curve, back to BT.709 (zscale is
# libzimg, in the bundled FFmpeg). Möbius keeps SDR-range colours and rolls highlights off (Hable
# darkened the mid-tones by a third); run after scaling, so the float frames are output-sized.
TONEMAP_FILTERS = (
    "zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,"
    "tonemap=tonemap=mobius:desat=0,zscale=t=bt709:m=bt709:r=pc,format=rgb24"
)


def _ffmpeg(*args: str) -> list[str]:
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *args]


def _raw_input(width: int, height: int, fps: float) -> list[str]:
    return ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", f"{fps:g}"]


def _frames_buffer(frames: Frames) -> memoryview:
    """The frames' own memory for FFmpeg's stdin (a copy only if they are not contiguous)."""
    return np.ascontiguousarray(frames).data


def decode_frames(
    source: Path,
    *,
    start_s: float,
    duration_s: float,
    width: int,
    height: int,
    fps: int,
    speed: float,
    max_frames: int,
    tonemap: bool = False,
) -> Frames:
    """Decode, trim, retime and scale a source into RGB frames (the only full decode we do).
    ``tonemap``: the source is HDR (probe's ``hdr_transfer``), mapped to SDR after scaling."""
    # -ss/-t before -i seek the input; the filter caps frames again, so a lying source cannot
    # produce more output than we asked for.
    filters = f"setpts=PTS/{speed:g},fps={fps},scale={width}:{height}:flags=lanczos"
    if tonemap:
        filters += "," + TONEMAP_FILTERS
    filters += ",setsar=1"
    argv = _ffmpeg(
        "-ss", f"{start_s:.3f}", "-t", f"{duration_s * speed:.3f}",
        *hardened_input_args(source),
        "-map", "0:V:0", "-an", "-sn", "-dn",
        "-vf", filters, "-frames:v", str(max_frames),
        "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
    )  # fmt: skip
    raw = run_tool(
        argv,
        what="FFmpeg decode",
        timeout_s=FFMPEG_TIMEOUT_SECONDS,
        memory_bytes=FFMPEG_MEMORY_BYTES,
    )
    frame_bytes = width * height * 3
    count = len(raw) // frame_bytes
    if count == 0:
        raise ToolFailed("FFmpeg decoded no frames from the source (is the trim past its end?)")
    return np.frombuffer(raw[: count * frame_bytes], np.uint8).reshape(count, height, width, 3)


def generate_palette(frames: Frames, *, colours: int, fps: float) -> NDArray[np.uint8]:
    """FFmpeg's palettegen over every pixel of every frame: ``colours`` RGB entries."""
    _, height, width, _ = frames.shape
    argv = _ffmpeg(
        *_raw_input(width, height, fps), "-i", "pipe:0",
        "-vf", f"palettegen=stats_mode=full:max_colors={colours}:reserve_transparent=0",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
    )  # fmt: skip
    raw = run_tool(
        argv,
        what="FFmpeg palettegen",
        stdin=_frames_buffer(frames),
        timeout_s=FFMPEG_TIMEOUT_SECONDS,
        memory_bytes=FFMPEG_MEMORY_BYTES,
    )
    palette = np.frombuffer(raw, np.uint8).reshape(-1, 3)
    return palette[:colours].copy()


def encode_mp4(frames: Frames, *, fps: float) -> bytes:
    """H.264 yuv420p with faststart, for og:video and X. Deterministic: bitexact, no metadata,
    and one x264 thread, so the same frames give the same bytes on any machine."""
    _, height, width, _ = frames.shape
    return encode_mp4_chunks([frames], width=width, height=height, fps=fps)


def encode_mp4_chunks(chunks: Iterable[Frames], *, width: int, height: int, fps: float) -> bytes:
    """``encode_mp4`` of the frames ``chunks`` give, a few at a time (each made as FFmpeg takes
    the last one in, from the writer thread): the same bytes, without every frame in memory."""
    # faststart rewrites the file after encoding, so the MP4 muxer needs a seekable file.
    with tempfile.TemporaryDirectory(prefix="loopmark-mp4-") as tmp:
        out = Path(tmp) / "loop.mp4"
        argv = _ffmpeg(
            *_raw_input(width, height, fps), "-i", "pipe:0",
            "-c:v", "libx264", "-preset", MP4_PRESET, "-crf", str(MP4_CRF),
            "-threads", str(MP4_THREADS),
            "-pix_fmt", "yuv420p", "-movflags", "+faststart",
            "-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1",
            "-y", f"file:{out}",
        )  # fmt: skip
        run_tool(
            argv,
            what="FFmpeg MP4 encode",
            stdin=(_frames_buffer(chunk) for chunk in chunks),
            timeout_s=FFMPEG_TIMEOUT_SECONDS,
            memory_bytes=FFMPEG_MEMORY_BYTES,
        )
        return out.read_bytes()
