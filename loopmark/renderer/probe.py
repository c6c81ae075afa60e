"""The hardened video probe: decide from metadata, before any decoding, whether a file is safe.

Every untrusted video goes through ``probe_video`` first, and every FFmpeg run that reads one uses
``hardened_input_args``. The checks run cheapest first, and the costly ones only on what passed:

1. ``stat``: a regular file, not empty, not over the byte cap (a FIFO or device is never opened).
2. Our own look at the bytes: playlists and concat scripts are named as such; a GIF's logical
   screen and image descriptors are read here, because FFmpeg's probe would decode a frame and
   allocate the whole declared canvas; an MP4's top-level boxes must fit inside the file, and
   the frame size of each of its video tracks (``stsd``) is checked here for the same reason.
3. FFmpeg with the file protocol only, a demuxer allow-list, bounded probing and decoders that
   refuse a frame over the pixel budget (``-max_pixels``: FFmpeg's probe decodes a first frame,
   and an 8192×8192 one cost 185 MB), under a timeout and a memory cap. There is no ffprobe in
   the imageio-ffmpeg wheel, so its stderr is parsed.
"""

from __future__ import annotations

import functools
import math
import os
import re
import resource
import signal
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from loopmark.errors import N_, ToolFailed, VideoRejected
from loopmark.renderer.process import FFMPEG_MEMORY_BYTES, PROBE_TIMEOUT_SECONDS, ffmpeg_exe

SOURCE_MAX_WIDTH = 3840
SOURCE_MAX_HEIGHT = 2160
# The box is orientation-agnostic (a portrait phone clip is 2160×3840), so the pixel count is what
# really bounds a decoded frame's memory.
SOURCE_MAX_PIXELS = SOURCE_MAX_WIDTH * SOURCE_MAX_HEIGHT
SOURCE_MAX_SECONDS = 60.0
SOURCE_MAX_BYTES = 25 * 1024 * 1024
ALLOWED_DEMUXERS = ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "gif")

# Probing reads at most this much of the file and of its timeline before FFmpeg reports.
PROBE_MAX_BYTES = 5_000_000
PROBE_MAX_MICROSECONDS = 5_000_000
# Real clips carry a handful of streams (video, audio, timecode, metadata); thousands are a way to
# make the probe slow and its report huge.
PROBE_MAX_STREAMS = 32
# A legitimate MP4 has a few top-level boxes (a fragmented one: two per fragment). Walking
# millions of 8-byte boxes would be a cheap way to burn our CPU.
MP4_MAX_TOP_LEVEL_BOXES = 100_000
# The index (moov) is read into memory to check its video tracks' frame sizes when it is at most
# this big (a minute of phone video has one of a few hundred KB); a bigger one is left to FFmpeg.
MP4_MAX_MOOV_BYTES = 8 * 1024 * 1024
MP4_MAX_CHILD_BOXES = 10_000  # per box walked inside the index
# How much of the file's start is read to recognise playlists, scripts and GIFs.
SNIFF_BYTES = 64
# FFmpeg's GIF demuxer: delays under 2 centiseconds play as 10 (browsers do the same).
GIF_MIN_DELAY_CENTISECONDS = 2
GIF_DEFAULT_DELAY_CENTISECONDS = 10
# Encoders write 255-byte sub-blocks (a 25 MB GIF has ~100,000); millions of 1-byte ones would
# only be there to make our walk slow.
GIF_MAX_SUB_BLOCKS = 1_000_000

_MIB = 1024 * 1024
_MP4_FIRST_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid"}


@dataclass(frozen=True)
class VideoInfo:
    """What the probe learned. ``width``/``height`` are as displayed (rotation applied).

    ``frames`` is counted for GIFs and for files whose duration had to be measured, and otherwise
    estimated as duration × fps (the renderer caps frames in its own command anyway).
    """

    container: str
    width: int
    height: int
    duration_s: float
    fps: float
    frames: int
    has_audio: bool
    # "smpte2084" (PQ) or "arib-std-b67" (HLG) for HDR video, which is tone-mapped to SDR when
    # decoded (renderer.video); None for SDR.
    hdr_transfer: str | None = None


def hardened_input_args(path: Path) -> list[str]:
    """FFmpeg input options for reading an untrusted file, ending with ``-i file:<absolute path>``.

    Only the file protocol (no http, no pipes, no nested URLs), only the allowed demuxers (no HLS,
    concat, image2 patterns), bounded probing. Options a caller adds for this input (``-ss``,
    ``-t``) go before these. The ``file:`` prefix keeps a name like ``-y`` or ``a:b.mp4`` from
    being read as an option or another protocol.
    """
    return [
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        ",".join(ALLOWED_DEMUXERS),
        "-probesize",
        str(PROBE_MAX_BYTES),
        "-analyzeduration",
        str(PROBE_MAX_MICROSECONDS),
        "-max_streams",
        str(PROBE_MAX_STREAMS),
        # Decoders refuse a bigger frame before allocating it (the probe decodes a first frame).
        "-max_pixels",
        str(SOURCE_MAX_PIXELS),
        "-i",
        "file:" + os.path.abspath(path),
    ]


def probe_video(
    path: Path, *, timeout_s: float = PROBE_TIMEOUT_SECONDS, max_bytes: int = SOURCE_MAX_BYTES
) -> VideoInfo:
    """Check an untrusted video file and describe it, or raise VideoRejected (``code`` says why).

    Nothing is decoded on purpose; FFmpeg's own probe runs under a timeout and a memory cap.
    """
    path = Path(os.path.abspath(path))
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in str(path)):
        # FFmpeg echoes the name into the report we parse; a newline in it could forge lines.
        raise VideoRejected(
            N_("The file name contains control characters."), code="video_unsupported"
        )
    size, head = _check_file(path, max_bytes)
    gif: _GifFacts | None = None
    if head.startswith((b"GIF87a", b"GIF89a")):
        gif = _read_gif(path.read_bytes())
    elif head[4:8] in _MP4_FIRST_BOXES:
        _check_mp4_boxes(path, size)
    report = _ffmpeg_report(path, timeout_s)
    info = _parse_report(report)
    if gif is not None:
        if info.container != "gif":
            raise _unsupported(N_("That file looks like a GIF but FFmpeg did not read it as one."))
        # Our own walk is authoritative: FFmpeg may estimate a long GIF's duration from bitrate.
        fps = gif.frames / gif.duration_s if gif.duration_s > 0 else info.fps
        info = replace(info, duration_s=gif.duration_s, fps=fps, frames=gif.frames)
    elif info.duration_s < 0:
        info = _measure_by_demuxing(path, info, timeout_s)
    _check_duration(info.duration_s)
    return info


# --- 1. the file itself ----------------------------------------------------------------------


def _check_file(path: Path, max_bytes: int) -> tuple[int, bytes]:
    """Return (size, first bytes) of a regular, non-empty file under the byte cap."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise VideoRejected(N_("That video file does not exist."), code="video_missing") from None
    except OSError as exc:
        raise _unsupported(
            N_("That file cannot be read (%(error)s)."), error=exc.strerror
        ) from None
    if stat.S_ISDIR(st.st_mode):
        raise _unsupported(N_("That is a folder, not a video file."))
    if not stat.S_ISREG(st.st_mode):
        # A FIFO or device would block or never end; it is never opened.
        raise _unsupported(N_("That is not a regular file."))
    if st.st_size == 0:
        raise _unsupported(N_("That file is empty."))
    if st.st_size > max_bytes:
        raise VideoRejected(
            N_("Video is %(size).1f MB; the limit is %(limit)d MB."),
            code="video_too_large",
            params={"size": st.st_size / _MIB, "limit": max_bytes // _MIB},
        )
    try:
        # O_NONBLOCK: should the path have been swapped for a FIFO since stat, open must not hang.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _unsupported(
            N_("That file cannot be read (%(error)s)."), error=exc.strerror
        ) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _unsupported(N_("That is not a regular file."))
        head = os.read(fd, SNIFF_BYTES)
    finally:
        os.close(fd)
    _refuse_scripts(head)
    return st.st_size, head


def _refuse_scripts(head: bytes) -> None:
    """Name the text formats that make FFmpeg open other files, whatever the file is called."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"#EXTM3U"):
        raise _unsupported(N_("That file is a playlist, not a video."))
    if text.startswith(b"ffconcat"):
        raise _unsupported(N_("That file is a concat script, not a video."))


# --- 2. our own look at the bytes ------------------------------------------------------------


@dataclass(frozen=True)
class _GifFacts:
    frames: int
    duration_s: float


def _read_gif(data: bytes) -> _GifFacts:
    """Walk a GIF's blocks without decoding: check the canvas and every frame, count delays."""
    if len(data) < 13:
        raise _unsupported(N_("That GIF is truncated."))
    screen_w = int.from_bytes(data[6:8], "little")
    screen_h = int.from_bytes(data[8:10], "little")
    _check_dimensions(screen_w, screen_h)
    pos = 13 + _color_table_bytes(data[10])
    frames = 0
    centiseconds = 0
    delay = GIF_DEFAULT_DELAY_CENTISECONDS
    budget = [GIF_MAX_SUB_BLOCKS]
    while pos < len(data):
        block = data[pos]
        if block == 0x3B:  # trailer
            break
        if block == 0x21:  # extension: label, then data sub-blocks
            if pos + 1 >= len(data):
                break
            if data[pos + 1] == 0xF9 and pos + 8 <= len(data):  # graphic control: frame delay
                delay = int.from_bytes(data[pos + 4 : pos + 6], "little")
            pos = _skip_sub_blocks(data, pos + 2, budget)
        elif block == 0x2C:  # image descriptor
            if pos + 10 > len(data):
                break
            frame_w = int.from_bytes(data[pos + 5 : pos + 7], "little")
            frame_h = int.from_bytes(data[pos + 7 : pos + 9], "little")
            _check_dimensions(frame_w, frame_h)
            frames += 1
            centiseconds += (
                delay if delay >= GIF_MIN_DELAY_CENTISECONDS else GIF_DEFAULT_DELAY_CENTISECONDS
            )
            delay = GIF_DEFAULT_DELAY_CENTISECONDS
            # Stop walking as soon as the answer is known.
            _check_duration(centiseconds / 100)
            # Skip the local colour table and the LZW minimum code size byte, then the data.
            lzw_data = pos + 10 + _color_table_bytes(data[pos + 9]) + 1
            pos = _skip_sub_blocks(data, lzw_data, budget)
        else:
            raise _unsupported(N_("That GIF is corrupt."))
    if frames == 0:
        raise _unsupported(N_("That GIF has no frames."))
    return _GifFacts(frames=frames, duration_s=centiseconds / 100)


def _color_table_bytes(packed: int) -> int:
    return 3 * (2 ** ((packed & 0x07) + 1)) if packed & 0x80 else 0


def _skip_sub_blocks(data: bytes, pos: int, budget: list[int]) -> int:
    """Position after a run of sub-blocks (each: length byte, data; a zero length ends the run).

    ``budget`` is the number of sub-blocks the whole walk may still visit.
    """
    while pos < len(data):
        budget[0] -= 1
        if budget[0] < 0:
            raise _unsupported(N_("That GIF is too fragmented."))
        length = data[pos]
        pos += 1 + length
        if length == 0:
            break
    return pos


def _check_mp4_boxes(path: Path, size: int) -> None:
    """Refuse an MP4 whose top-level boxes run past the end of the file (a truncated upload),
    and one with a video track whose frames are over the size limits (_check_mp4_tracks).

    FFmpeg reads a truncated file without complaint when the index (moov) comes first, then
    fails or stops early halfway through rendering.
    """
    with open(path, "rb") as f:
        pos = 0
        moov_seen = False  # a file has one index: only the first is walked
        for _ in range(MP4_MAX_TOP_LEVEL_BOXES):
            if pos >= size:
                return
            f.seek(pos)
            header = f.read(16)
            if len(header) < 8:
                raise _unsupported(N_("That MP4 file is truncated."))
            box_size = int.from_bytes(header[0:4], "big")
            if box_size == 0:  # the last box runs to the end of the file
                return
            header_bytes = 8
            if box_size == 1:  # 64-bit size follows the type
                if len(header) < 16:
                    raise _unsupported(N_("That MP4 file is truncated."))
                box_size, header_bytes = int.from_bytes(header[8:16], "big"), 16
            if box_size < header_bytes:  # a box is at least its own header
                raise _unsupported(N_("That MP4 file is corrupt."))
            if pos + box_size > size:
                raise _unsupported(N_("That MP4 file is truncated."))
            if header[4:8] == b"moov" and not moov_seen and box_size <= MP4_MAX_MOOV_BYTES:
                moov_seen = True
                f.seek(pos + header_bytes)
                _check_mp4_tracks(f.read(box_size - header_bytes))
            pos += box_size
    raise _unsupported(N_("That MP4 file has too many top-level boxes."))


def _mp4_children(data: bytes, start: int = 0) -> list[tuple[bytes, bytes]]:
    """The boxes in ``data[start:]`` as (type, body); a box that does not fit ends the list."""
    boxes: list[tuple[bytes, bytes]] = []
    pos = start
    while pos + 8 <= len(data) and len(boxes) < MP4_MAX_CHILD_BOXES:
        box_size = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        header = 8
        if box_size == 1 and pos + 16 <= len(data):
            box_size, header = int.from_bytes(data[pos + 8 : pos + 16], "big"), 16
        elif box_size == 0:
            box_size = len(data) - pos
        if box_size < header or pos + box_size > len(data):
            break
        boxes.append((kind, data[pos + header : pos + box_size]))
        pos += box_size
    return boxes


def _child(boxes: list[tuple[bytes, bytes]], kind: bytes) -> bytes | None:
    return next((body for k, body in boxes if k == kind), None)


def _check_mp4_tracks(moov: bytes) -> None:
    """Refuse an MP4 with a video track whose sample entries (``stsd``) declare frames over the
    size limits, from the index alone: FFmpeg's probe would decode a first frame of it.

    Only a refusal is decided here: anything this walk cannot read is left to FFmpeg's probe.
    """
    for kind, trak in _mp4_children(moov):
        if kind != b"trak":
            continue
        mdia = _child(_mp4_children(trak), b"mdia")
        if mdia is None:
            continue
        mdia_boxes = _mp4_children(mdia)
        hdlr = _child(mdia_boxes, b"hdlr")
        minf = _child(mdia_boxes, b"minf")
        if hdlr is None or hdlr[8:12] != b"vide" or minf is None:
            continue
        stbl = _child(_mp4_children(minf), b"stbl")
        stsd = None if stbl is None else _child(_mp4_children(stbl), b"stsd")
        if stsd is None:
            continue
        # stsd: version and flags, entry count, then the entries. A visual sample entry: 6
        # reserved bytes, the data reference index, 16 bytes of pre-defined and reserved, then
        # width and height (16 bits each).
        for _, entry in _mp4_children(stsd, 8):
            if len(entry) >= 28:
                width = int.from_bytes(entry[24:26], "big")
                height = int.from_bytes(entry[26:28], "big")
                if width and height:
                    _check_dimensions(width, height)


# --- 3. FFmpeg's report ----------------------------------------------------------------------


def _ffmpeg_report(path: Path, timeout_s: float) -> str:
    """Run FFmpeg on the file with no output: it prints the input's description, then exits 1."""
    argv = [ffmpeg_exe(), "-hide_banner", "-nostdin", *hardened_input_args(path)]
    return _run_for_stderr(argv, timeout_s)


def _run_for_stderr(argv: Sequence[str], timeout_s: float) -> str:
    """Run under the same limits as process.run_tool, but keep the whole stderr: it is the answer.

    (run_tool treats a non-zero exit as failure and keeps only stderr's tail; a probe without an
    output always exits non-zero, and its report is at the start.)
    """
    argv = list(argv)
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            # setrlimit is async-signal-safe and the only thing run between fork and exec.
            preexec_fn=functools.partial(
                resource.setrlimit,
                resource.RLIMIT_AS,
                (FFMPEG_MEMORY_BYTES, FFMPEG_MEMORY_BYTES),
            ),
        )
    except OSError as exc:
        raise ToolFailed(f"FFmpeg could not start: {exc.strerror}", argv=argv) from exc
    try:
        _, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.communicate()
        raise VideoRejected(
            N_("Reading the video took longer than %(seconds)g s."),
            code="video_timeout",
            params={"seconds": timeout_s},
        ) from None
    except BaseException:
        _kill_group(proc)
        proc.communicate()
        raise
    if proc.returncode < 0:
        raise _unsupported(N_("That video could not be read within the memory and time limits."))
    # Split on "\n" only: str.splitlines would also break on characters a file's tags may carry.
    return err.decode("utf-8", "replace").replace("\r", "\n")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


_INPUT_RE = re.compile(r"^Input #0, (.+?), from '")
_DURATION_RE = re.compile(r"^  Duration: (?:N/A|(\d+):(\d{2}):(\d{2}(?:\.\d+)?))")
_STREAM_RE = re.compile(r"^  Stream #0:(\d+)\S*: (\w+): (.*)$")
_SIZE_RE = re.compile(r"^(\d+)x(\d+)(?:\s|$)")
_RATE_RE = re.compile(r"^(\d+(?:\.\d+)?)(k?) (fps|tbr)$")
_HDR_TRANSFER_RE = re.compile(r"\((?:[^()]*[,/] ?)?(smpte2084|arib-std-b67)[,)/]")
_ROTATION_RE = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees", re.IGNORECASE)


@dataclass
class _Stream:
    kind: str
    description: str
    rotation: float = 0.0


def _parse_report(report: str) -> VideoInfo:
    """Read FFmpeg's description of input #0; ``duration_s`` is -1 when it declares none."""
    lines = report.split("\n")
    containers = [m.group(1) for line in lines if (m := _INPUT_RE.match(line))]
    if not containers:
        if "not on whitelist" in report:
            raise _unsupported(
                N_("That file's format is not supported (MP4, MOV, WebM, MKV, GIF).")
            )
        raise _unsupported(N_("That file could not be read as a video."))
    durations = [m for line in lines if (m := _DURATION_RE.match(line))]
    streams: dict[int, _Stream] = {}
    current: _Stream | None = None
    for line in lines:
        if m := _STREAM_RE.match(line):
            index = int(m.group(1))
            # Tags are echoed into this report; a forged line would repeat one of the real ones.
            if index in streams:
                raise _unsupported(N_("That file's description is inconsistent."))
            current = streams[index] = _Stream(kind=m.group(2), description=m.group(3))
        elif current is not None and (m := _ROTATION_RE.search(line)):
            current.rotation = float(m.group(1))
    if len(containers) != 1 or len(durations) != 1:
        raise _unsupported(N_("That file's description is inconsistent."))
    container = containers[0]
    if container not in ALLOWED_DEMUXERS:
        raise _unsupported(N_("That file's format is not supported (MP4, MOV, WebM, MKV, GIF)."))
    videos = [s for s in streams.values() if s.kind == "Video"]
    # Every video stream is checked: FFmpeg's default choice is the largest, not the first.
    sizes = [_video_size(s) for s in videos]
    for width, height in sizes:
        _check_dimensions(width, height)
    main = [i for i, s in enumerate(videos) if "(attached pic)" not in s.description]
    if not main:
        raise _unsupported(N_("That file has no video track."))
    width, height = sizes[main[0]]
    duration = durations[0]
    duration_s = -1.0
    if duration.group(1) is not None:
        hours, minutes, seconds = duration.groups()
        duration_s = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    fps = _frame_rate(videos[main[0]])
    frames = round(duration_s * fps) if duration_s >= 0 else 0
    return VideoInfo(
        container=container,
        width=width,
        height=height,
        duration_s=duration_s,
        fps=fps,
        frames=frames,
        has_audio=any(s.kind == "Audio" for s in streams.values()),
        hdr_transfer=_hdr_transfer(videos[main[0]]),
    )


def _hdr_transfer(stream: _Stream) -> str | None:
    """The HDR transfer named in the pixel format's colour description, e.g.
    ``yuv420p10le(tv, bt2020nc/bt2020/arib-std-b67, progressive)``."""
    m = _HDR_TRANSFER_RE.search(stream.description)
    return m.group(1) if m else None


def _fields(stream: _Stream) -> list[str]:
    # Splitting on ", " also cuts "yuv420p(tv, progressive)"; no size or rate field has a comma.
    return [field.strip() for field in stream.description.split(", ")]


def _video_size(stream: _Stream) -> tuple[int, int]:
    for field in _fields(stream):
        if m := _SIZE_RE.match(field):
            width, height = int(m.group(1)), int(m.group(2))
            if round(abs(stream.rotation)) % 180 == 90:
                width, height = height, width
            return width, height
    raise _unsupported(N_("That video's frame size could not be read."))


def _frame_rate(stream: _Stream) -> float:
    """The stream's declared fps, else its tbr (FFmpeg's guess), else 0.0 (unknown)."""
    rates: dict[str, float] = {}
    for field in _fields(stream):
        if m := _RATE_RE.match(field):
            rates.setdefault(m.group(3), float(m.group(1)) * (1000 if m.group(2) else 1))
    return rates.get("fps", rates.get("tbr", 0.0))


def _measure_by_demuxing(path: Path, info: VideoInfo, timeout_s: float) -> VideoInfo:
    """Measure a file that declares no duration (a browser's MediaRecorder WebM, a live capture).

    Packets are copied to nowhere, never decoded; ``-t`` stops the read just past the limit, so
    even a file of endless tiny packets costs at most that much demuxing (or the timeout).
    """
    argv = [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        *hardened_input_args(path),
        "-map",
        "0:V:0",
        "-c",
        "copy",
        "-t",
        f"{SOURCE_MAX_SECONDS + 1:g}",
        "-f",
        "null",
        "-",
    ]
    report = _run_for_stderr(argv, timeout_s)
    matches = re.findall(r"frame=\s*(\d+)\s.*?time=(\d+):(\d{2}):(\d{2}(?:\.\d+)?)", report)
    if not matches:
        raise _unsupported(N_("That video's duration could not be measured."))
    frames, hours, minutes, seconds = matches[-1]
    duration_s = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return replace(info, duration_s=duration_s, frames=int(frames))


# --- limits ----------------------------------------------------------------------------------


def _check_dimensions(width: int, height: int) -> None:
    fits = (
        max(width, height) <= max(SOURCE_MAX_WIDTH, SOURCE_MAX_HEIGHT)
        and min(width, height) <= min(SOURCE_MAX_WIDTH, SOURCE_MAX_HEIGHT)
        and width * height <= SOURCE_MAX_PIXELS
    )
    if width <= 0 or height <= 0:
        raise VideoRejected(
            N_("Video is %(width)d×%(height)d, which is empty."),
            code="video_dimensions",
            params={"width": width, "height": height},
        )
    if not fits:
        raise VideoRejected(
            N_("Video is %(width)d×%(height)d; the limit is %(max_width)d×%(max_height)d."),
            code="video_dimensions",
            params={
                "width": width,
                "height": height,
                "max_width": SOURCE_MAX_WIDTH,
                "max_height": SOURCE_MAX_HEIGHT,
            },
        )


def _check_duration(duration_s: float) -> None:
    if not math.isfinite(duration_s) or duration_s > SOURCE_MAX_SECONDS:
        raise VideoRejected(
            N_("Video lasts %(length)s; the limit is %(max)g s."),
            code="video_too_long",
            params={"length": _clock(duration_s), "max": SOURCE_MAX_SECONDS},
        )
    if duration_s <= 0:
        raise _unsupported(N_("That video has no duration."))


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "forever"
    if seconds < 3600:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _unsupported(reason: str, **params: object) -> VideoRejected:
    """A refusal (``reason`` marked with N_, its ``%(name)s`` filled from ``params``): the web
    edge says it in the visitor's language."""
    return VideoRejected(reason, code="video_unsupported", params=params)
