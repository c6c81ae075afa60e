"""Running tools: the memory cap holds (with util-linux's prlimit and without), stdin streams
from a thread without a copy, and a child that dies early cannot hang the writer."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from loopmark.errors import ToolFailed
from loopmark.renderer import process
from loopmark.renderer.process import run_tool

ALLOCATE = "import sys; b = bytearray(int(sys.argv[1])); b[-1] = 1; print(len(b))"
MIB = 1024 * 1024


@pytest.fixture(params=["prlimit", "after spawn"])
def cap_way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways the cap is applied: util-linux's prlimit wrapper, and prlimit(2) on the pid."""
    if request.param == "prlimit":
        assert process.prlimit_exe() is not None, "util-linux prlimit is expected on this machine"
    else:
        monkeypatch.setattr(process, "prlimit_exe", lambda: None)
    return str(request.param)


def test_the_memory_cap_stops_a_child_that_allocates_past_it(cap_way: str) -> None:
    argv = [sys.executable, "-c", ALLOCATE, str(400 * MIB)]
    with pytest.raises(ToolFailed) as excinfo:
        run_tool(argv, what="hog", timeout_s=20, memory_bytes=300 * MIB)
    assert "MemoryError" in (excinfo.value.stderr or "")
    assert excinfo.value.argv == argv  # the message shows the tool's argv, not the wrapper's
    ok = run_tool(argv, what="hog", timeout_s=20, memory_bytes=1024 * MIB)
    assert ok.strip() == str(400 * MIB).encode()


def test_no_preexec_fn_so_the_server_is_never_forked(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    real = subprocess.Popen

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", spy)
    run_tool([sys.executable, "-c", "pass"], what="t", timeout_s=20, memory_bytes=512 * MIB)
    assert seen and all(kwargs.get("preexec_fn") is None for kwargs in seen)


def test_stdin_streams_frames_whole_from_their_own_memory() -> None:
    frames = np.random.default_rng(1).integers(0, 256, (40, 270, 480, 3), dtype=np.uint8)
    digest = "import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())"
    out = run_tool(
        [sys.executable, "-c", digest],
        what="digest",
        stdin=frames.data,
        timeout_s=20,
        memory_bytes=1024 * MIB,
    )
    assert out.decode().strip() == hashlib.sha256(frames.tobytes()).hexdigest()


def test_a_child_that_exits_without_reading_fails_fast_instead_of_hanging() -> None:
    data = bytes(64 * MIB)
    with pytest.raises(ToolFailed, match="exit status 3"):
        run_tool(
            [sys.executable, "-c", "import sys; sys.exit(3)"],
            what="quitter",
            stdin=data,
            timeout_s=20,
            memory_bytes=512 * MIB,
        )


def test_a_child_that_never_reads_times_out_and_is_killed() -> None:
    with pytest.raises(ToolFailed, match="timed out"):
        run_tool(
            [sys.executable, "-c", "import time; time.sleep(30)"],
            what="sleeper",
            stdin=bytes(16 * MIB),
            timeout_s=1,
            memory_bytes=512 * MIB,
        )
