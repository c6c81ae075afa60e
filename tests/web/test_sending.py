"""Slow downloads through the real server (cheroot, as `loopmark serve` runs it) on loopback:
a file's answer is handed to the sender thread once the socket stops taking it, so clients that
read slowly hold no request thread."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask

from loopmark.web.server import create_server
from tests.site.conftest import MakeApp
from tests.web.idle_connections import get

# A real static file larger than loopback's send buffer (~1.3 MB at a connection's start).
BIG_STATIC = "/static/fonts/DroidSansFallback.ttf"
THREADS = int(os.environ.get("T", 4))
SLOW_READERS = 2 * THREADS
# A phone on a poor network, or a hostile reader: its window stays small, its reads few.
SLOW_RECEIVE_BUFFER_BYTES = 4096
SLOW_READ_BYTES = 1024
SLOW_READ_EVERY_SECONDS = 0.5
PROBES = ("/healthz", "/static/img/logo.svg", "/")


@dataclass
class Running:
    server: Any
    port: int
    thread: threading.Thread = field(repr=False)


@pytest.fixture
def serve() -> Iterator[Any]:
    """``serve(app, **create_server options)`` runs it on the real server; a Running."""
    running: list[Running] = []

    def start(app: Flask, **options: Any) -> Running:
        server = create_server(app, "127.0.0.1", 0, threads=THREADS, **options)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        running.append(Running(server, int(server.effective_port), thread))
        return running[-1]

    yield start
    for each in running:
        each.server.close()
        each.thread.join(10)


def request(path: str, *, method: str = "GET", headers: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode()


def slow_socket(port: int) -> socket.socket:
    """A connection with a small receive window (set before connecting, as a phone's is)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RECEIVE_BUFFER_BYTES)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    return sock


class SlowReaders:
    """``count`` clients each asking for ``path`` and reading SLOW_READ_BYTES every
    SLOW_READ_EVERY_SECONDS until stopped (or the server closes the connection)."""

    def __init__(self, port: int, path: str, count: int) -> None:
        self.sockets = [slow_socket(port) for _ in range(count)]
        self.received = [0] * count
        self.closed = [False] * count
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._read, args=(n,), daemon=True) for n in range(count)
        ]
        for sock in self.sockets:
            sock.sendall(request(path))
        for thread in self._threads:
            thread.start()

    def _read(self, n: int) -> None:
        sock = self.sockets[n]
        while not self._stop.wait(SLOW_READ_EVERY_SECONDS):
            try:
                piece = sock.recv(SLOW_READ_BYTES)
            except OSError:
                piece = b""
            if not piece:
                self.closed[n] = True
                return
            self.received[n] += len(piece)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        for sock in self.sockets:
            sock.close()


def timed_get(port: int, path: str) -> tuple[int, float]:
    started = time.monotonic()
    status, _ = get(port, path)
    return status, time.monotonic() - started


@pytest.mark.timeout(120)
def test_slow_readers_hold_no_request_thread(make_app: MakeApp, serve: Any) -> None:
    # Twice as many slow downloads of a large file as there are request threads: before the
    # sender, each held its thread for the whole download (every write waiting up to the I/O
    # timeout for the window to open), and pages and static files stopped answering.
    running = serve(make_app())
    readers = SlowReaders(running.port, BIG_STATIC, SLOW_READERS)
    try:
        time.sleep(2.0)  # every reader has its answer under way
        answers = {path: timed_get(running.port, path) for path in PROBES}
        print(f"beside {SLOW_READERS} slow readers, {THREADS} threads: {answers}")
        assert all(status == 200 and seconds < 1.0 for status, seconds in answers.values())
        assert all(received > 0 for received in readers.received), readers.received
        assert not any(readers.closed)  # still downloading, none cut off
    finally:
        readers.stop()
