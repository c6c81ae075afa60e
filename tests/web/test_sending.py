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
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

import loopmark
from loopmark.web import server as web_server
from loopmark.web.server import create_server
from tests.site.conftest import MakeApp
from tests.web.idle_connections import close_all, get

# A real static file (3.4 MB) larger than loopback's send buffer takes at once (it took 2.8 MB).
BIG_STATIC = "/static/fonts/DroidSansFallback.ttf"
THREADS = 4
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

    def __init__(
        self,
        port: int,
        path: str,
        count: int,
        *,
        read_bytes: int = SLOW_READ_BYTES,
        every_s: float = SLOW_READ_EVERY_SECONDS,
    ) -> None:
        self.read_bytes, self.every_s = read_bytes, every_s
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
        while not self._stop.wait(self.every_s):
            try:
                piece = sock.recv(self.read_bytes)
            except OSError:
                piece = b""
            if not piece:
                self.closed[n] = True
                return
            self.received[n] += len(piece)

    def drain(self, seconds: float = 10.0) -> list[int]:
        """Stop reading slowly, read what is left as fast as it comes until the server closes
        each connection; the bytes each received in all (-1: still open after ``seconds``)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        totals = []
        for n, sock in enumerate(self.sockets):
            sock.settimeout(seconds)
            try:
                while piece := sock.recv(1 << 20):
                    self.received[n] += len(piece)
                totals.append(self.received[n])
            except ConnectionResetError:
                totals.append(self.received[n])
            except TimeoutError:
                totals.append(-1)
        return totals

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
        # Before: no answer within the client's 10 s; now milliseconds (3 s on a loaded machine).
        assert all(status == 200 and seconds < 3.0 for status, seconds in answers.values())
        assert all(received > 0 for received in readers.received), readers.received
        assert not any(readers.closed)  # still downloading, none cut off
    finally:
        readers.stop()


# -- what arrives ------------------------------------------------------------------------------

STATIC_DIR = Path(loopmark.__file__).parent / "static"
BIG_STATIC_BYTES = (STATIC_DIR / BIG_STATIC.removeprefix("/static/")).read_bytes()


class Client:
    """Answers read one by one from a keep-alive connection, by their Content-Length."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _more(self) -> None:
        piece = self.sock.recv(1 << 20)
        if not piece:
            raise ConnectionError(f"closed, {len(self.buffer)} bytes unread")
        self.buffer += piece

    def head(self) -> tuple[bytes, dict[str, str]]:
        """An answer's status line and headers (lower-case names)."""
        while b"\r\n\r\n" not in self.buffer:
            self._more()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status.encode(), headers

    def body(self, length: int) -> bytes:
        while len(self.buffer) < length:
            self._more()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return body

    def answer(self, *, pause_s: float = 0.0) -> tuple[bytes, dict[str, str], bytes]:
        """One whole answer; ``pause_s`` without reading after its headers, so the server's
        socket fills and the rest goes to the Sender."""
        status, headers = self.head()
        time.sleep(pause_s)
        return status, headers, self.body(int(headers["content-length"]))


def held_transfers(running: Running) -> int:
    return int(running.server.http.sender.transfers)


def wait_for(condition: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.timeout(120)
def test_a_handed_off_file_arrives_whole_and_the_connection_is_used_again(
    make_app: MakeApp, serve: Any
) -> None:
    running = serve(make_app())
    with slow_socket(running.port) as sock:
        client = Client(sock)
        sock.sendall(request(BIG_STATIC))
        status, headers = client.head()
        assert status == b"HTTP/1.1 200 OK"
        # The socket stopped taking it: the Sender holds the rest, no request thread does.
        assert wait_for(lambda: held_transfers(running) == 1)
        sock.sendall(request(BIG_STATIC))  # pipelined: answered once the first is out
        assert client.body(int(headers["content-length"])) == BIG_STATIC_BYTES
        status, _, body = client.answer(pause_s=0.5)
        assert status == b"HTTP/1.1 200 OK" and body == BIG_STATIC_BYTES
        # Kept alive: the same connection answers again.
        sock.sendall(request("/healthz"))
        assert client.answer()[0] == b"HTTP/1.1 200 OK"
    assert wait_for(lambda: held_transfers(running) == 0)


@pytest.mark.timeout(120)
def test_a_range_of_a_file_arrives_whole(make_app: MakeApp, serve: Any) -> None:
    running = serve(make_app())
    with slow_socket(running.port) as sock:
        client = Client(sock)
        start, end = 1000, 2_999_999
        sock.sendall(request(BIG_STATIC, headers=f"Range: bytes={start}-{end}\r\n"))
        status, headers = client.head()
        assert wait_for(lambda: held_transfers(running) == 1)  # handed off, from its offset
        body = client.body(int(headers["content-length"]))
        assert status == b"HTTP/1.1 206 PARTIAL CONTENT", status
        assert headers["content-range"] == f"bytes {start}-{end}/{len(BIG_STATIC_BYTES)}"
        assert body == BIG_STATIC_BYTES[start : end + 1]
        # A HEAD sends the headers alone, and the connection goes on.
        sock.sendall(request(BIG_STATIC, method="HEAD"))
        status, headers = client.head()
        assert status == b"HTTP/1.1 200 OK" and int(headers["content-length"]) == len(
            BIG_STATIC_BYTES
        )
        sock.sendall(request(BIG_STATIC, headers="Range: bytes=-100\r\n"))
        status, _, body = client.answer()
        assert status.startswith(b"HTTP/1.1 206 ") and body == BIG_STATIC_BYTES[-100:]
        assert client.buffer == b""


# -- bounds ------------------------------------------------------------------------------------


def closed_by_server(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes the connection within ``seconds`` (what it sent is drained)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(1 << 20):
                return True
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
    return False


@pytest.mark.timeout(120)
def test_a_reader_that_stalls_is_dropped_and_nothing_leaks(make_app: MakeApp, serve: Any) -> None:
    app = make_app()
    before_server = open_descriptors()
    running = serve(app)
    sender = running.server.http.sender
    sender.stall_s = 1.0  # REQUEST_IO_TIMEOUT_SECONDS in service
    serving = open_descriptors()
    stalled = [slow_socket(running.port) for _ in range(3)]
    for sock in stalled:
        sock.sendall(request(BIG_STATIC))
        sock.recv(100)  # the answer has begun; then nothing more is read
    assert wait_for(lambda: held_transfers(running) == 3)
    assert open_descriptors() == serving + 3 * 3  # the client's socket, the server's, the file
    started = time.monotonic()
    assert wait_for(lambda: held_transfers(running) == 0)
    assert time.monotonic() - started < 1.0 + 4.0  # the stall, the Sender's next check, slack
    assert all(closed_by_server(sock, 10) for sock in stalled)
    assert wait_for(lambda: running.server.open_connections == 0)
    close_all(stalled)
    assert open_descriptors() == serving  # files and server sockets closed
    assert get(running.port, "/static/img/logo.svg")[0] == 200  # (/healthz opens SQLite)
    running.server.close()
    running.thread.join(10)
    assert open_descriptors() == before_server  # the Sender's selector and pipe too


@pytest.mark.timeout(120)
def test_a_reader_that_keeps_reading_is_not_dropped(make_app: MakeApp, serve: Any) -> None:
    # What a reader takes is progress, though the socket stays full: the first send filled a
    # buffer of megabytes, and it is writable again only once a third of it has drained.
    running = serve(make_app())
    running.server.http.sender.stall_s = 2.0
    readers = SlowReaders(running.port, BIG_STATIC, 2, read_bytes=4096, every_s=0.1)
    try:
        assert wait_for(lambda: held_transfers(running) == 2)
        time.sleep(5.0)  # counting what was sent, both were dropped here (no room for ~20 s)
        assert held_transfers(running) == 2 and not any(readers.closed)
    finally:
        readers.stop()


@pytest.mark.timeout(120)
def test_a_reader_that_falls_behind_the_minimum_rate_is_dropped(
    make_app: MakeApp, serve: Any
) -> None:
    running = serve(make_app())
    sender = running.server.http.sender
    sender.grace_s, sender.min_bytes_per_s = 1.0, 100_000.0
    readers = SlowReaders(running.port, BIG_STATIC, 2)  # 2 KB/s: progress, but too little
    try:
        assert wait_for(lambda: held_transfers(running) == 2)
        assert wait_for(lambda: held_transfers(running) == 0, 10)
        assert all(0 < total < len(BIG_STATIC_BYTES) for total in readers.drain())
    finally:
        readers.stop()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["close", "leave"])
def test_stopping_the_server_ends_the_transfers(make_app: MakeApp, serve: Any, how: str) -> None:
    # close: from another thread; leave: the serving loop returns (SIGTERM's graceful stop).
    app = make_app()
    before_server = open_descriptors()
    running = serve(app)
    readers = SlowReaders(running.port, BIG_STATIC, SLOW_READERS)
    try:
        assert wait_for(lambda: held_transfers(running) == SLOW_READERS)
        started = time.monotonic()
        getattr(running.server, how)()
        running.thread.join(10)
        assert not running.thread.is_alive()
        assert time.monotonic() - started < 5
        assert all(0 < total < len(BIG_STATIC_BYTES) for total in readers.drain())
    finally:
        readers.stop()
    assert open_descriptors() == before_server


@pytest.mark.timeout(120)
def test_a_download_under_way_at_a_stop_may_end_first(make_app: MakeApp, serve: Any) -> None:
    # Review: the Sender was closed at once, cutting every download still running at the end
    # of a graceful stop. Those that end within STOP_DRAIN_SECONDS now end whole.
    running = serve(make_app())
    with slow_socket(running.port) as sock:
        client = Client(sock)
        sock.sendall(request(BIG_STATIC))
        status, headers = client.head()
        assert wait_for(lambda: held_transfers(running) == 1)
        stopping = threading.Thread(target=running.server.close)
        stopping.start()
        time.sleep(0.3)  # stopping, and the reader comes back to read it all
        assert client.body(int(headers["content-length"])) == BIG_STATIC_BYTES
        stopping.join(10)
    assert status == b"HTTP/1.1 200 OK" and not stopping.is_alive()


@pytest.mark.timeout(120)
def test_past_the_senders_capacity_the_thread_writes_as_before(
    make_app: MakeApp, serve: Any
) -> None:
    running = serve(make_app())
    running.server.http.sender.capacity = 0
    with slow_socket(running.port) as sock:
        client = Client(sock)
        sock.sendall(request(BIG_STATIC))
        status, _, body = client.answer(pause_s=0.5)
        assert status == b"HTTP/1.1 200 OK" and body == BIG_STATIC_BYTES
        assert held_transfers(running) == 0


@pytest.mark.timeout(120)
def test_a_large_body_of_bytes_is_handed_off_too(make_app: MakeApp, serve: Any) -> None:
    app = make_app()
    big = os.urandom(3 * 1024 * 1024)
    app.add_url_rule("/test-big-bytes", "test_big_bytes", lambda: big)
    running = serve(app)
    with slow_socket(running.port) as sock:
        client = Client(sock)
        sock.sendall(request("/test-big-bytes"))
        status, headers = client.head()
        assert wait_for(lambda: held_transfers(running) == 1)
        assert status == b"HTTP/1.1 200 OK"
        assert client.body(int(headers["content-length"])) == big
        sock.sendall(request("/healthz"))
        assert client.answer()[0] == b"HTTP/1.1 200 OK"


def test_the_sender_holds_no_more_than_the_descriptors_allow(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Each transfer may hold a file open beside its socket; the Sender always has room (review:
    # with the connections taking every descriptor below 10,200, it had none, silently).
    limit, reserved = web_server.CONNECTION_LIMIT, web_server.RESERVED_DESCRIPTORS
    assert web_server.descriptor_limits(65536) == (limit, limit)
    assert web_server.descriptor_limits(20000) == (limit, 20000 - reserved - limit)
    assert caplog.text == ""
    for descriptors in (1024, 8192, 10240, 15000):
        connections, transfers = web_server.descriptor_limits(descriptors)
        assert connections + transfers <= descriptors - reserved
        assert transfers >= (descriptors - reserved) // 3 - 1
        assert connections >= transfers
    assert "LimitNOFILE" in caplog.text


def test_a_small_file_goes_out_as_before(
    make_app: MakeApp, serve: Any, socket_writes: list[bytes]
) -> None:
    running = serve(make_app())
    sent = socket_writes
    small = (STATIC_DIR / "img/icon-512.png").read_bytes()  # 28 KB
    with slow_socket(running.port) as sock:
        client = Client(sock)
        sock.sendall(request("/static/img/icon-512.png"))
        status, _, body = client.answer()
    assert status == b"HTTP/1.1 200 OK" and body == small
    # As before: Werkzeug's 8 KB pieces, the first one with the headers; no transfer.
    assert sent[0].startswith(b"HTTP/1.1 200 OK\r\n") and sent[0].endswith(small[:8192])
    assert b"".join(sent).endswith(small)
    assert held_transfers(running) == 0


@pytest.mark.timeout(120)
def test_a_handed_off_answer_to_close_ends_with_the_connection(
    make_app: MakeApp, serve: Any
) -> None:
    running = serve(make_app())
    with slow_socket(running.port) as sock:
        client = Client(sock)
        sock.sendall(request(BIG_STATIC, headers="Connection: close\r\n"))
        status, headers = client.head()
        assert wait_for(lambda: held_transfers(running) == 1)
        assert client.body(int(headers["content-length"])) == BIG_STATIC_BYTES
        assert closed_by_server(sock, 10) and client.buffer == b""
    assert wait_for(lambda: running.server.open_connections == 0)
    assert held_transfers(running) == 0
