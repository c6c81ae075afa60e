"""A real moto server on a free loopback port: S3 and DynamoDB over HTTP, the AWS wire protocol.

Two kinds: moto's own threaded ``moto_server``, and a serial one for tests that race writers.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

START_TIMEOUT_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# DynamoDB applies the writes to one item one at a time; moto's threaded server does not (it
# checks a condition, then writes, with no lock between), so under a true race two conditional
# writes can both pass there. Races run against a moto server that answers one request at a time:
# the same wire protocol and semantics, with DynamoDB's per-item serialisation.
SERIAL_MOTO_SERVER = """
import sys, threading
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication, MotoRequestHandler, create_backend_app,
)
app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()
def serial(environ, start_response):
    with lock:
        return list(app(environ, start_response))
run_simple("127.0.0.1", int(sys.argv[1]), serial, threaded=True, request_handler=MotoRequestHandler)
"""


def moto_server() -> AbstractContextManager[str]:
    """A context that starts ``moto_server`` as a subprocess, yields its endpoint URL and stops it
    afterwards."""
    port = free_port()
    exe = Path(sys.executable).parent / "moto_server"
    return _serving([str(exe), "-H", "127.0.0.1", "-p", str(port)], port, "moto_server")


def serial_moto_server() -> AbstractContextManager[str]:
    """Like :func:`moto_server`, but one that answers one request at a time (for races)."""
    port = free_port()
    argv = [sys.executable, "-c", SERIAL_MOTO_SERVER, str(port)]
    return _serving(argv, port, "serial moto server")


@contextmanager
def freezable_moto_server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A serial moto server of the test's own, with its process: SIGSTOP freezes it as a hung
    endpoint is frozen (connections still accepted by the kernel, nothing answered), SIGCONT
    thaws it. Yields (endpoint, process); it is thawed before it is stopped."""
    port = free_port()
    argv = [sys.executable, "-c", SERIAL_MOTO_SERVER, str(port)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with _serving(argv, port, "freezable moto server", proc=proc) as endpoint:
        try:
            yield endpoint, proc
        finally:
            proc.send_signal(signal.SIGCONT)


@contextmanager
def _serving(
    argv: list[str], port: int, name: str, *, proc: subprocess.Popen[bytes] | None = None
) -> Iterator[str]:
    """Run ``argv`` (a server listening on ``port``; ``proc`` if already started), yield its
    endpoint once it answers, then stop it."""
    if proc is None:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Ask a test server to stop; kill it if it has not within ten seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def reset(endpoint: str) -> None:
    """Forget every bucket and table, so each test starts from nothing."""
    req = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(req, timeout=10).close()
