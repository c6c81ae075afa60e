"""Generators of hostile (and a few honest) video files for the probe's tests.

Each function writes one small file into ``folder`` and returns its path. They use the same FFmpeg
as the renderer and take well under a second each, except ``huge_frame_video`` (one 8192×8192
frame, about a second: share it through a session-scoped fixture).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from loopmark.renderer.process import ffmpeg_exe

GENERATE_TIMEOUT_SECONDS = 60.0


def _ffmpeg(*args: str) -> None:
    """Run FFmpeg on trusted, generated inputs (lavfi sources and our own files)."""
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
        check=True,
        capture_output=True,
        timeout=GENERATE_TIMEOUT_SECONDS,
    )


# --- honest files ----------------------------------------------------------------------------


def small_mp4(folder: Path, name: str = "small.mp4", *, faststart: bool = False) -> Path:
    """1 s of 64×48 at 10 fps, H.264, no audio."""
    path = folder / name
    extra = ["-movflags", "+faststart"] if faststart else []
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=64x48:r=10:d=1",
        "-c:v", "libx264", "-preset", "ultrafast", *extra, f"file:{path}",
    )  # fmt: skip
    return path


def small_webm(folder: Path, name: str = "small.webm") -> Path:
    """1 s of 64×48 at 10 fps, VP9 in WebM."""
    path = folder / name
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=64x48:r=10:d=1",
        "-c:v", "libvpx-vp9", "-deadline", "realtime", "-f", "webm", f"file:{path}",
    )  # fmt: skip
    return path


def small_gif(folder: Path, name: str = "small.gif") -> Path:
    """1 s of 64×48 at 10 fps (10 frames of 10 cs)."""
    path = folder / name
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x48:r=10:d=1", "-f", "gif", f"file:{path}")
    return path


def webm_without_duration(folder: Path) -> Path:
    """A WebM written to a pipe, as a browser's MediaRecorder does: no Duration element."""
    path = folder / "recorded.webm"
    proc = subprocess.run(
        [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
            "-f", "lavfi", "-i", "testsrc2=s=64x48:r=10:d=2",
            "-c:v", "libvpx", "-deadline", "realtime", "-f", "webm", "pipe:1",
        ],
        check=True, capture_output=True, timeout=GENERATE_TIMEOUT_SECONDS,
    )  # fmt: skip
    path.write_bytes(proc.stdout)
    return path


def rotated_mp4(folder: Path) -> Path:
    """The 64×48 clip with a display matrix turning it a quarter: shown as 48×64."""
    source = small_mp4(folder, "unrotated.mp4")
    path = folder / "rotated.mp4"
    _ffmpeg("-display_rotation", "90", "-i", f"file:{source}", "-c", "copy", f"file:{path}")
    return path


def awkward_name(folder: Path) -> Path:
    """A valid WebM whose name has a leading dash, spaces, quotes and a colon."""
    return small_webm(folder, "-y 'it\"s: a clip'.webm")


def literal_pattern_name(folder: Path) -> Path:
    """A valid WebM literally named ``frame%03d.webm`` (image2 would expand the pattern)."""
    return small_webm(folder, "frame%03d.webm")


# --- hostile files ---------------------------------------------------------------------------


def hls_playlist(folder: Path) -> Path:
    """An HLS playlist named like a video, listing a local file and a URL."""
    path = folder / "playlist.mp4"
    path.write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n"
        "#EXTINF:10,\n/etc/passwd\n"
        "#EXTINF:10,\nhttp://127.0.0.1:9/segment.ts\n"
        "#EXT-X-ENDLIST\n"
    )
    return path


def ffconcat_script(folder: Path) -> Path:
    """An ffconcat script named like a video, pointing at a server file."""
    path = folder / "concat.mp4"
    path.write_text("ffconcat version 1.0\nfile /etc/passwd\n")
    return path


def ten_hour_video(folder: Path) -> Path:
    """Two 16×16 frames, the second at 36,000 s: a 1.5 KB file that declares 10 hours."""
    path = folder / "ten_hours.mp4"
    _ffmpeg(
        "-f", "lavfi", "-i", "color=black:s=16x16:r=1:d=2",
        "-vf", "setpts=N*36000/TB", "-fps_mode", "passthrough",
        "-c:v", "libx264", "-preset", "ultrafast", f"file:{path}",
    )  # fmt: skip
    return path


def huge_frame_video(folder: Path) -> Path:
    """One black 8192×8192 frame (~200 KB): converting it needs hundreds of MB."""
    path = folder / "huge.mp4"
    _ffmpeg(
        "-f", "lavfi", "-i", "color=black:s=8192x8192:r=1:d=1", "-frames:v", "1",
        "-c:v", "libx264", "-preset", "ultrafast", f"file:{path}",
    )  # fmt: skip
    return path


def hidden_huge_stream(folder: Path, huge: Path) -> Path:
    """A small first video stream and ``huge`` as a second one, which FFmpeg would pick."""
    small = small_mp4(folder, "cover.mp4")
    path = folder / "two_streams.mkv"
    _ffmpeg(
        "-i", f"file:{small}", "-i", f"file:{huge}",
        "-map", "0:v", "-map", "1:v", "-c", "copy", f"file:{path}",
    )  # fmt: skip
    return path


def gif_screen_bomb(folder: Path, name: str = "bomb.gif") -> Path:
    """35 bytes declaring a 16000×16000 canvas and frame: ~1 GB to decode."""
    path = folder / name
    side = (16000).to_bytes(2, "little")
    data = (
        b"GIF89a" + side + side + b"\x80\x00\x00"  # logical screen, 2-colour global table
        + b"\x00\x00\x00\xff\xff\xff"  # the table
        + b"\x2c\x00\x00\x00\x00" + side + side + b"\x00"  # image descriptor
        + b"\x02\x02\x4c\x01\x00"  # LZW minimum code size, one sub-block, end
        + b"\x3b"  # trailer
    )  # fmt: skip
    assert len(data) == 35
    path.write_bytes(data)
    return path


def gif_frame_bomb(folder: Path) -> Path:
    """A 1×1 canvas whose one frame declares 16000×16000."""
    path = folder / "frame_bomb.gif"
    side = (16000).to_bytes(2, "little")
    path.write_bytes(
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
        + b"\x2c\x00\x00\x00\x00" + side + side + b"\x00\x02\x02\x4c\x01\x00\x3b"
    )  # fmt: skip
    return path


def gif_long_delay(folder: Path) -> Path:
    """A 1×1 GIF whose only frame is shown for 655.35 s (the largest delay a GIF can hold)."""
    path = folder / "long_delay.gif"
    path.write_bytes(
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
        + b"\x21\xf9\x04\x00\xff\xff\x00\x00"  # graphic control: delay 65535 cs
        + b"\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x4c\x01\x00\x3b"
    )  # fmt: skip
    return path


def text_file(folder: Path) -> Path:
    path = folder / "notes.mp4"
    path.write_text("This is not a video, just some words.\n" * 20)
    return path


def empty_file(folder: Path) -> Path:
    path = folder / "empty.mp4"
    path.write_bytes(b"")
    return path


def truncated_mp4(folder: Path, *, faststart: bool) -> Path:
    """A real MP4 cut at 60 %. With ``faststart`` its index survives, so FFmpeg reads it happily."""
    whole = small_mp4(folder, f"whole-{faststart}.mp4", faststart=faststart)
    path = folder / f"truncated-{faststart}.mp4"
    data = whole.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])
    return path


def audio_only(folder: Path) -> Path:
    """An M4A (the MP4 demuxer, so allowed) with a tone and no picture."""
    path = folder / "tone.mp4"
    _ffmpeg("-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", f"file:{path}")
    return path


def oversized_file(folder: Path, size_bytes: int) -> Path:
    """A sparse file of ``size_bytes`` starting like an MP4: costs no disk."""
    path = folder / "oversized.mp4"
    with open(path, "wb") as f:
        f.write(b"\x00\x00\x00\x18ftypisom")
        f.truncate(size_bytes)
    return path


def fifo(folder: Path) -> Path:
    """A named pipe with no writer: opening it for reading would block forever."""
    path = folder / "pipe.mp4"
    os.mkfifo(path)
    return path
