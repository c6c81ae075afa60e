"""Issue 10's faults against the real server: `loopmark serve` (cheroot, SQLite, the local pool at
concurrency 1) takes a handful of renders, is killed with SIGKILL or stopped with SIGTERM while
they are queued, and started again: every accepted render finishes, without a visitor polling
for it (the restarted server's start-up step dispatches them). Loopback only, bounded.

Before the durable queue, kill -9 lost 14 of 20 accepted renders and SIGTERM 23 of 30 (404
``unknown_render`` after the restart).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from loopmark.renderer.prepare import PreparedTemplate
from tests.moto_server import free_port
from tests.paths import REPO

RENDERS = 6
BOUND_SECONDS = 120.0  # against hangs only


class Server:
    """`loopmark serve` in a subprocess, started and stopped by the test."""

    def __init__(self, tmp_path: Path, workdir: Path) -> None:
        self.port = free_port()
        self.db = tmp_path / "loopmark.db"
        self.logs = tmp_path
        self.env = {
            **os.environ,
            "LOOPMARK_DATA_DIR": str(tmp_path),
            "LOOPMARK_TEMPLATES_DIR": str(workdir / "templates"),
            "LOOPMARK_PREPARED_DIR": str(workdir / "prepared"),
            "LOOPMARK_RENDER_CONCURRENCY": "1",
            "LOOPMARK_RENDER_HOLD_SLOTS": "0",  # answer 202 at once: renders stay queued
            "LOOPMARK_RATE_LIMITS": "off",
            "LOOPMARK_SITE_URL": "http://127.0.0.1",
            "LOOPMARK_SECRET_KEY": "s" * 40,
            "LOOPMARK_SHUTDOWN_GRACE_SECONDS": "30",
            "LOOPMARK_LEASE_SECONDS": "2",  # a killed render is found again within 2 s
            "PYTHONPATH": str(REPO),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, *, sigint_ignored: bool = False) -> None:
        """Start the server; ``sigint_ignored`` as a shell starts a background job (``cmd &``):
        SIGINT ignored, inherited through exec."""
        self.starts += 1
        log = (self.logs / f"serve-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "loopmark", "serve", "--port", str(self.port)],
            cwd=REPO,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            preexec_fn=_ignore_sigint if sigint_ignored else None,  # noqa: PLW1509
        )
        log.close()
        deadline = time.monotonic() + BOUND_SECONDS
        while True:
            try:
                self.call("GET", "/api/templates")
                return
            except OSError:
                assert self.proc.poll() is None, self.log_tail()
                assert time.monotonic() < deadline, self.log_tail()
                time.sleep(0.1)

    def call(self, method: str, path: str, body: object = None) -> tuple[int, dict[str, object]]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def signal(self, signum: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(signum)
        return self.proc.wait(timeout=BOUND_SECONDS)

    def statuses(self, keys: list[str]) -> dict[str, str | None]:
        """Each key's record status, read from the SQLite file (no request dispatches)."""
        marks = ",".join("?" * len(keys))
        sql = f"SELECT key, status FROM render_records WHERE key IN ({marks})"
        with closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)) as conn:
            rows = dict(conn.execute(sql, keys).fetchall())
        return {key: rows.get(key) for key in keys}

    def log_tail(self) -> str:
        return (self.logs / f"serve-{self.starts}.log").read_text(errors="replace")[-3000:]

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_sigterm_stops_a_server_started_with_sigint_ignored(
    tmp_path: Path, workdir: Path, small: PreparedTemplate
) -> None:
    """A background job of a script has SIGINT ignored: the graceful stop must not rely on a
    simulated Ctrl-C (it did, and such a server never exited)."""
    server = Server(tmp_path, workdir)
    server.start(sigint_ignored=True)
    try:
        assert server.signal(signal.SIGTERM) == 0, server.log_tail()
    finally:
        server.close()


@pytest.fixture
def server(tmp_path: Path, workdir: Path, small: PreparedTemplate) -> Iterator[Server]:
    server = Server(tmp_path, workdir)
    server.start()
    yield server
    server.close()


def accept_renders(server: Server, tag: str) -> list[str]:
    keys = []
    for n in range(RENDERS):
        status, body = server.call(
            "POST", "/api/renders", {"template": "small", "caption": f"{tag} {n}"}
        )
        assert status in (200, 202), body
        keys.append(str(body["key"]))
    return keys


def wait_all_done(server: Server, keys: list[str]) -> None:
    deadline = time.monotonic() + BOUND_SECONDS
    while (statuses := server.statuses(keys)) and set(statuses.values()) != {"done"}:
        assert time.monotonic() < deadline, (statuses, server.log_tail())
        time.sleep(0.1)


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_every_accepted_render_finishes_after_a_restart(server: Server, stop: int) -> None:
    keys = accept_renders(server, "Restart")
    # Recorded before the 202: every key is known to the records, whatever the workers did.
    assert None not in server.statuses(keys).values()
    code = server.signal(stop)
    left = [key for key, status in server.statuses(keys).items() if status != "done"]
    assert left, "every render finished before the stop: nothing was tested"
    if stop == signal.SIGTERM:
        assert code == 0, server.log_tail()
        # A graceful stop hands nothing over half-done: what is left is queued.
        assert set(server.statuses(left).values()) == {"queued"}
    server.start()
    wait_all_done(server, keys)
    assert "re-queued" in server.log_tail()
    for key in keys:
        status, body = server.call("GET", f"/api/renders/{key}")
        assert (status, body["status"]) == (200, "done")


SLOW_TOOL_SECONDS = 8  # FFmpeg starts this late: a render is still running when the grace ends
DRAIN_GRACE_SECONDS = 3


def slow_ffmpeg(tmp_path: Path) -> Path:
    """The real FFmpeg, started SLOW_TOOL_SECONDS late (imageio-ffmpeg honours
    IMAGEIO_FFMPEG_EXE): a render in flight that outlasts the stop's grace period."""
    import imageio_ffmpeg

    script = tmp_path / "slow-ffmpeg"
    script.write_text(
        f'#!/bin/sh\nsleep {SLOW_TOOL_SECONDS}\nexec "{imageio_ffmpeg.get_ffmpeg_exe()}" "$@"\n'
    )
    script.chmod(0o755)
    return script


def post_render(port: int, caption: str) -> tuple[int, str | None]:
    """POST /api/renders on a fresh connection: (status, Retry-After); (0, None) if refused."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/renders",
        method="POST",
        data=json.dumps({"template": "small", "caption": caption}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers.get("Retry-After")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Retry-After")
    except OSError:
        return 0, None


def test_sigterm_refuses_new_renders_with_retry_after_hands_back_and_exits_0(
    tmp_path: Path, workdir: Path, small: PreparedTemplate
) -> None:
    server = Server(tmp_path, workdir)
    server.env["IMAGEIO_FFMPEG_EXE"] = str(slow_ffmpeg(tmp_path))
    server.env["LOOPMARK_SHUTDOWN_GRACE_SECONDS"] = str(DRAIN_GRACE_SECONDS)
    server.start()
    try:
        assert server.proc is not None
        status, body = server.call("POST", "/api/renders", {"template": "small", "caption": "Slow"})
        assert status == 202, body
        key = str(body["key"])
        deadline = time.monotonic() + BOUND_SECONDS
        while server.statuses([key])[key] != "rendering":
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.05)

        server.proc.send_signal(signal.SIGTERM)
        answers: list[tuple[int, str | None]] = []
        deadline = time.monotonic() + DRAIN_GRACE_SECONDS
        while time.monotonic() < deadline:
            answers.append(post_render(server.port, f"During the stop {len(answers)}"))
            if answers[-1][0] == 503:
                break
        # The first answers may predate the signal's handling (queued: 202); then 503 at once.
        assert answers[-1][0] == 503, answers
        assert int(answers[-1][1] or 0) >= 1, answers
        assert {status for status, _ in answers[:-1]} <= {202}, answers
        # Polls are still answered while the running render has its grace period.
        status, body = server.call("GET", f"/api/renders/{key}")
        assert status == 202, body

        assert server.proc.wait(timeout=BOUND_SECONDS) == 0, server.log_tail()
        # The render that outlasted the grace was handed back for the next start.
        assert server.statuses([key])[key] == "queued"
        assert "handed 1 unfinished renders back" in server.log_tail()
    finally:
        server.close()
