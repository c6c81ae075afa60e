"""Serving the site in production: cheroot, one process with a pool of threads.

One process on purpose: the render pool, its bounded queue, the rate-limit counters and the
prepared templates are shared by every request the server takes, so the bound really bounds.
Cheroot watches its connections with an epoll selector (``selectors.DefaultSelector``), so an
idle connection costs nothing per request: waitress's poll() loop re-registered every open
descriptor on each pass, and 1,500 idle keep-alive connections cut a static file from 506 to 57
requests/s. A connection is handed to a request thread only once it has bytes to read (cheroot
hands a fresh one over at once, where a thread would wait for a request that may never come),
and a request's headers must be in within HEADER_DEADLINE_SECONDS of a thread taking them up.
A file, or a large body, that the socket does not take at once is finished by one sender thread
(``loopmark.web.sending``), so a slow download holds no request thread.
Before listening, every enabled template is prepared, so the first visitors do not pay for it, and
the renders a previous run accepted but did not finish are dispatched again; while serving, a
sweep every lease does it again (a render killed mid-way is found once its lease lapses).
SIGTERM stops gracefully: new renders get 503 with Retry-After, running ones get
LOOPMARK_SHUTDOWN_GRACE_SECONDS to finish (then are handed back to the queue), and the process
exits 0.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import resource
import selectors
import signal
import socket
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any
from urllib.parse import unquote

from cheroot.connections import ConnectionManager
from cheroot.server import ChunkedRFile, HTTPConnection, HTTPRequest, KnownLengthRFile
from cheroot.wsgi import Server as WSGIServer
from flask import Flask
from werkzeug.exceptions import HTTPException

from loopmark.errors import N_, LoopmarkError
from loopmark.service.render_service import RenderService
from loopmark.web import errors, i18n
from loopmark.web.context import services as app_services
from loopmark.web.headers import http_date_now
from loopmark.web.logs import configure_logging
from loopmark.web.sending import Sender, SendingGateway, Transfer

log = logging.getLogger(__name__)

# The Server header (and SERVER_SOFTWARE): no version for strangers to look up.
IDENT = "loopmark"
# Request threads. POST /api/renders may hold a thread for ~2 s (RENDER_HOLD_SLOTS of them at
# most); the others answer cache hits and pages in milliseconds.
DEFAULT_THREADS = 16
# Open connections kept (idle keep-alives included) before the server stops accepting; the rest
# wait in the kernel's listen backlog. A venue's phones each keep a connection or two open.
CONNECTION_LIMIT = 10000
# Descriptors kept for everything that is not a client connection: the listening socket, SQLite
# files per thread, log files, FFmpeg pipes, prepared templates, S3/DynamoDB connections.
RESERVED_DESCRIPTORS = 200
# An idle connection is closed after this long: longer than a load balancer's idle timeout
# (60 s on AWS), so the balancer closes first and never reuses a connection we drop.
IDLE_TIMEOUT_SECONDS = 65
# Once a request has begun, each read of it (and each write of its answer) may wait this long
# for the peer; a request thread is never held longer by a stalled client's single read.
REQUEST_IO_TIMEOUT_SECONDS = 10
# A request's line and headers must all be in within this long of a thread taking them up: a
# client that trickles them (a byte every few seconds) is cut off, and the thread freed.
HEADER_DEADLINE_SECONDS = 10.0
# A request body must keep coming: it may take BODY_GRACE_SECONDS plus one second for every
# MIN_BODY_BYTES_PER_SECOND of it received so far (Apache's mod_reqtimeout, body=10,MinRate=16K).
# A client trickling its body (a slow-loris POST) is cut off and its thread freed; a phone on
# a poor venue network (128 kbit/s and up) is not. Checked before each read of the body, so a
# stalled read overshoots by REQUEST_IO_TIMEOUT_SECONDS at most.
BODY_GRACE_SECONDS = 10.0
MIN_BODY_BYTES_PER_SECOND = 16 * 1024
READ_PIECE_BYTES = 64 * 1024
READ_LINE_BYTES = 64 * 1024
# A connection closed with a request body still coming (an early answer: a refusal, a 404) is
# shut for writing first and what the client still sends is read and dropped for up to this
# long (Apache's lingering close), so the client reads the answer instead of a reset.
LINGER_SECONDS = 2.0
# A body larger than this (an upload) holds its thread for as long as it takes to arrive: at
# most a quarter of the threads (two at least) read such bodies at once, and a large body past
# that is answered 503 with Retry-After before a byte of it is read, so slow uploads can never
# take every thread from the pages and polls.
LARGE_BODY_BYTES = 1024 * 1024
LARGE_BODY_RETRY_AFTER_SECONDS = 10
# At a stop, downloads under way get this long to end before their connections are closed.
STOP_DRAIN_SECONDS = 3.0
# Connections the kernel queues while the server is busy accepting (capped by somaxconn).
LISTEN_BACKLOG = 2048
# Body limits looked up by (method, path), kept for the most recent ones (a route match each).
BODY_LIMITS_KEPT = 1024
# The request line and headers together (cookies included).
MAX_REQUEST_HEADER_BYTES = 64 * 1024
# The most any route may take (a visitor's upload: LOOPMARK_UPLOAD_MAX_BYTES, at most 120 MB,
# plus its form fields). Every route gets its own, smaller bound (16 KB unless the view declares
# more), checked once the headers are in, before the body is read.
MAX_REQUEST_BODY_BYTES = 121 * 1024 * 1024
# The attribute a view carries when it takes more than app.config["MAX_CONTENT_LENGTH"]
# (set by ``loopmark.admin.auth.allows_body``; tests/web/test_server.py holds them together).
VIEW_BODY_LIMIT_ATTRIBUTE = "admin_max_body_bytes"
# Set in app.extensions once warm_up has prepared the templates (/readyz waits for it).
WARMED_EXTENSION = "loopmark.templates_warmed"

BodyLimit = Callable[[str, str], int]


class Server:
    """The site on one listening socket, bound and ready: ``.run()`` serves until ``.close()``
    (from another thread), Ctrl-C or SystemExit; ``.effective_host``/``.effective_port``."""

    def __init__(self, http: _HTTPServer) -> None:
        self.http = http
        self.effective_host, self.effective_port = http.bind_addr[:2]

    @property
    def open_connections(self) -> int:
        return self.http.open_connections

    def leave(self) -> None:
        """From any thread: the serving loop returns within an expiration interval (0.5 s), as
        Ctrl-C makes it (a signal would not do: a parent may have SIGINT ignored for us)."""
        self.http.leaving = True

    def run(self) -> None:
        try:
            self.http.serve()
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.http.stop()

    def close(self) -> None:
        """Stop accepting, close every connection, stop the request threads (waits for them)."""
        self.http.stop()


def create_server(app: Flask, host: str, port: int, *, threads: int = DEFAULT_THREADS) -> Server:
    """A cheroot server bound to (host, port), its request threads started, not yet serving.
    Port 0 picks a free port: see ``.effective_port``.

    The descriptor limit is raised so the connection limit can be reached; each request's body
    is bounded by its route before it is read. Proxy headers pass through untouched: the app
    decides whom to trust (``loopmark.web.proxies``), so the test client and the real server
    behave alike."""
    connection_limit, transfer_limit = descriptor_limits(raise_descriptor_limit())
    http = _HTTPServer(
        app, host, port, threads, connection_limit, body_limits(app), transfer_limit=transfer_limit
    )
    http.prepare()
    return Server(http)


def raise_descriptor_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit (logged); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, CONNECTION_LIMIT * 2)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, wanted, exc)
            return soft
        log.info("open-file limit raised from %d to %d", soft, wanted)
        return wanted
    return soft


def descriptor_limits(descriptors: int) -> tuple[int, int]:
    """How many connections the server keeps, and how many answers the Sender may hold (each
    a file open beside its connection's socket), within the descriptor limit: CONNECTION_LIMIT
    and as many transfers when it can, else a third of the room left for the transfers, the
    rest for connections (logged: a Sender with no room would leave slow downloads holding
    request threads again)."""
    if descriptors == resource.RLIM_INFINITY:
        return CONNECTION_LIMIT, CONNECTION_LIMIT
    room = max(descriptors - RESERVED_DESCRIPTORS, 3)
    connections = min(CONNECTION_LIMIT, room * 2 // 3)
    if room - CONNECTION_LIMIT >= CONNECTION_LIMIT // 2:
        connections = CONNECTION_LIMIT  # room for these and half as many transfers at least
    transfers = min(connections, room - connections)
    if connections < CONNECTION_LIMIT:
        log.warning(
            "the open-file limit (%d) holds only %d connections and %d downloads under way, "
            "not %d: raise it (LimitNOFILE=65536 in the systemd unit, --ulimit nofile=65536 "
            "for a container)",
            descriptors,
            connections,
            transfers,
            CONNECTION_LIMIT,
        )
    return connections, transfers


def body_limits(app: Flask) -> BodyLimit:
    """``limit(method, path)``: the most bytes a request's body may have on that route, from
    the view's declared limit or ``app.config["MAX_CONTENT_LENGTH"]``."""
    default = int(app.config["MAX_CONTENT_LENGTH"] or MAX_REQUEST_BODY_BYTES)
    adapter = app.url_map.bind("localhost")

    @functools.lru_cache(maxsize=BODY_LIMITS_KEPT)
    def limit(method: str, path: str) -> int:
        try:
            endpoint, _ = adapter.match(path, method=method)
        except HTTPException:  # no such route: Flask answers 404/405, reading nothing big
            return default
        view = app.view_functions.get(str(endpoint))
        declared = getattr(view, VIEW_BODY_LIMIT_ATTRIBUTE, None)
        return min(int(declared), MAX_REQUEST_BODY_BYTES) if declared else default

    return limit


def answer_language(request: HTTPRequest) -> str:
    """The language the app would answer ``request`` in (its ``?lang=``, its cookie, its
    Accept-Language: web.i18n), read from cheroot's parsed request line and headers."""
    headers = request.inheaders
    return i18n.language_outside_app(
        query=bytes(getattr(request, "qs", b"") or b"").decode("latin-1"),  # none: unread
        cookie=bytes(headers.get(b"Cookie", b"")).decode("latin-1"),
        accept_language=bytes(headers.get(b"Accept-Language", b"")).decode("latin-1"),
    )


def large_body_slots(threads: int) -> int:
    """How many request threads may read a large body (LARGE_BODY_BYTES) at once."""
    return max(2, threads // 4)


def error_answer(
    status: str,
    code: str,
    message: str,
    *,
    language: str = i18n.DEFAULT_LANGUAGE,
    retry_after_s: int | None = None,
    detail: str | None = None,
    **variables: object,
) -> bytes:
    """A whole HTTP/1.1 answer in the site's JSON error form, closing the connection (for the
    answers the server gives before the app sees the request). ``message`` (marked with N_ for
    the catalogues, ``%(name)s`` filled from ``variables``) is said in ``language`` (see
    :func:`answer_language`), as the app's own errors are; ``detail``, when given, says what
    exactly was wrong, as the HTTP parser found it."""
    text = i18n.catalogue(language).gettext(message)
    error = {"code": code, "message": text % variables if variables else text}
    if detail:
        error["detail"] = detail  # the parser's own words (English), for a developer
    body = json.dumps({"error": error}).encode()
    headers = [
        f"HTTP/1.1 {status}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        f"Server: {IDENT}",
        f"Content-Language: {language}",
        # As the app's answers whose words the visitor's headers chose: no cache (a CDN keeps
        # error answers a moment) gives one visitor's language to another.
        f"Vary: {', '.join(i18n.VARY_HEADERS)}",
    ]
    if retry_after_s is not None:
        headers.append(f"Retry-After: {retry_after_s}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode("latin-1") + body


class _HTTPServer(WSGIServer):
    """cheroot's WSGI server with a connection limit, a fresh connection left in the selector
    until it has bytes to read, a short I/O timeout once a request has begun, and each request
    body bounded by its route."""

    _connections: Any  # cheroot's ConnectionManager, set by prepare() (not in cheroot's stubs)

    def __init__(
        self,
        app: Flask,
        host: str,
        port: int,
        threads: int,
        connection_limit: int,
        limit: BodyLimit,
        *,
        transfer_limit: int,
    ) -> None:
        super().__init__(
            (host, port),
            app,
            numthreads=threads,
            max=threads,
            server_name=IDENT,
            request_queue_size=LISTEN_BACKLOG,
            timeout=IDLE_TIMEOUT_SECONDS,  # how long a connection may idle in the selector
        )
        self.software = IDENT
        self.keep_alive_conn_limit = connection_limit  # (cheroot's default: 10)
        self.max_request_header_size = MAX_REQUEST_HEADER_BYTES
        self.max_request_body_size = MAX_REQUEST_BODY_BYTES
        self.connection_limit = connection_limit
        self.ConnectionClass = _connection_class(limit)
        self._open = 0
        self._paused = False
        self.leaving = False  # set by Server.leave: the serving loop returns
        self.header_deadline_s = HEADER_DEADLINE_SECONDS
        self._reading: dict[Any, float] = {}  # connection → when a thread began reading it
        self._open_lock = threading.Lock()
        self.large_bodies = threading.BoundedSemaphore(large_body_slots(threads))
        # Files and large bodies are written by the Sender's thread once a socket stops taking
        # them (loopmark.web.sending): a slow download holds no request thread.
        self.gateway = SendingGateway
        self.sender: Sender | None = None
        self.transfer_limit = transfer_limit

    @property
    def open_connections(self) -> int:
        return self._open

    def process_conn(self, conn: Any) -> None:
        """A fresh connection waits in the selector for its first bytes (cheroot would hand it
        to a request thread at once, which then waits for a request that may never come)."""
        if getattr(conn, "waiting", False):
            conn.waiting = False
            self.put_conn(conn)
            return
        super().process_conn(conn)

    def prepare(self) -> None:
        """Bind and listen as cheroot does, with our connection manager (it resumes accepting)."""
        super().prepare()
        plain = self._connections
        self._connections = _ConnectionManager(self)
        plain._selector.close()
        self.sender = Sender(
            super().put_conn,
            capacity=self.transfer_limit,
            stall_s=REQUEST_IO_TIMEOUT_SECONDS,
        )

    def put_conn(self, conn: Any) -> None:
        """A request thread is done with a connection: one whose answer is still being sent
        goes to the Sender (which puts it back, or closes it, when the answer is out)."""
        transfer: Transfer | None = getattr(conn, "pending", None)
        if transfer is not None and self.sender is not None:
            conn.pending = None
            self.sender.submit(transfer)
            return
        super().put_conn(conn)

    def stop(self) -> None:
        """Downloads under way get STOP_DRAIN_SECONDS to end, the rest are closed; then
        cheroot stops."""
        if self.sender is not None:
            self.sender.close(drain_s=STOP_DRAIN_SECONDS)
        super().stop()

    def counted(self, delta: int) -> None:
        """Count a connection opened (+1, in the selector's thread, as it is accepted) or closed
        (-1): at the limit the listening socket leaves the selector, and the next connections
        wait in the kernel's listen backlog until the selector's thread finds room again."""
        with self._open_lock:
            self._open += delta
            if delta > 0 and not self._paused and self._open >= self.connection_limit:
                self._paused = self._listen(False)

    def reading(self, conn: Any, started: bool) -> None:
        """A thread begins (or has finished) reading a request's line and headers."""
        with self._open_lock:
            if started:
                self._reading[conn] = time.monotonic()
            else:
                self._reading.pop(conn, None)

    def cut_slow_headers(self) -> None:
        """In the selector's thread: shut the connections whose headers are late, so the read
        their thread is blocked in returns at once and the thread is free."""
        now = time.monotonic()
        with self._open_lock:
            late = [c for c, since in self._reading.items() if now - since > self.header_deadline_s]
            for conn in late:
                del self._reading[conn]
        for conn in late:
            log.info("headers not in after %.0f s: connection closed", self.header_deadline_s)
            try:
                conn.socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def resume_if_room(self) -> None:
        """In the selector's thread: accept again once connections have closed."""
        with self._open_lock:
            if self._paused and self._open < self.connection_limit:
                self._paused = not self._listen(True)

    def _listen(self, on: bool) -> bool:
        """Put the listening socket in the selector or take it out; whether that was done."""
        if not self.ready or self.socket is None:
            return False
        selector = self._connections._selector
        try:
            if on:
                selector.register(self.socket.fileno(), selectors.EVENT_READ, data=self)
            else:
                selector.unregister(self.socket.fileno())
        except (KeyError, ValueError, OSError) as exc:  # stopping meanwhile
            log.debug("listening socket not %s: %s", "resumed" if on else "paused", exc)
            return False
        if not on:
            log.warning("%d connections open: accepting no more until one closes", self._open)
        return True

    def error_log(self, msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
        logging.getLogger("cheroot").log(level, "%s", msg, exc_info=traceback)


class _ConnectionManager(ConnectionManager):
    """cheroot's selector loop (epoll on Linux). Every ``expiration_interval`` (0.5 s) it closes
    connections idle past the server's timeout, then the server cuts requests whose headers are
    late and may accept again."""

    def _expire(self, threshold: float) -> None:
        super()._expire(threshold)  # type: ignore[misc]  # not in cheroot's stubs
        if self.server.leaving:
            raise KeyboardInterrupt  # serve() lets it out; Server.run() stops the server
        self.server.cut_slow_headers()
        self.server.resume_if_room()


class _PacedBody:
    """A request's reader while its body is read: each read first checks that the body has kept
    up (BODY_GRACE_SECONDS plus a second per MIN_BODY_BYTES_PER_SECOND received); one that has
    not raises TimeoutError (the app sees a client gone: Werkzeug answers 400) and the
    connection is closed after the answer."""

    def __init__(self, raw: Any, request: HTTPRequest) -> None:
        self._raw = raw
        self._request = request
        self._started = time.monotonic()
        self._received = 0

    def _keep_pace(self) -> None:
        allowed = BODY_GRACE_SECONDS + self._received / MIN_BODY_BYTES_PER_SECOND
        if time.monotonic() - self._started > allowed:
            self._request.close_connection = True
            raise TimeoutError(f"request body too slow: {self._received} bytes in {allowed:.0f} s")

    def read(self, size: int = -1) -> bytes:
        # Piece by piece as the socket gives them (read1: one receive at most), checking the
        # pace before each: one read of the whole body would wait for a trickle to the end.
        pieces: list[bytes] = []
        wanted = size if size is not None and size >= 0 else None
        while wanted is None or wanted > 0:
            self._keep_pace()
            piece: bytes = self._raw.read1(READ_PIECE_BYTES if wanted is None else wanted)
            if not piece:
                break
            self._received += len(piece)
            pieces.append(piece)
            if wanted is not None:
                wanted -= len(piece)
        return b"".join(pieces)

    def readline(self, size: int = -1) -> bytes:
        # What has arrived (peek: one receive at most), up to the newline, checking the pace
        # before each receive; a line is READ_LINE_BYTES at most unless the caller asks for more
        # (a chunk-size line trickled without end would hold the thread and grow for ever).
        limit = size if size is not None and size >= 0 else READ_LINE_BYTES
        line = bytearray()
        while len(line) < limit:
            self._keep_pace()
            arrived: bytes = self._raw.peek(1)[: limit - len(line)]
            if not arrived:
                break
            end = arrived.find(b"\n")
            taken: bytes = self._raw.read(len(arrived) if end < 0 else end + 1)  # buffered
            self._received += len(taken)
            line += taken
            if end >= 0:
                break
        return bytes(line)

    def unread(self) -> bool:
        """Whether the body was left (partly) unread: the app answered without it."""
        body = self._request.rfile
        if isinstance(body, KnownLengthRFile):
            return bool(body.remaining)
        return isinstance(body, ChunkedRFile) and not body.closed


class SocketReader(io.BufferedReader):
    """A connection's reader: the C ``io.BufferedReader``, where cheroot's is the pure-Python
    ``_pyio`` one (its readline, called for the request line and for each header, took a
    quarter of a cache hit's CPU). ``has_data`` as cheroot asks it, once a request is
    answered: whether the next one is here already (pipelined), found without waiting."""

    bytes_read = 0  # cheroot's statistics (off) read it

    def __init__(self, sock: socket.socket, bufsize: int = io.DEFAULT_BUFFER_SIZE) -> None:
        super().__init__(socket.SocketIO(sock, "rb"), bufsize)
        self._sock = sock

    def has_data(self) -> bool:
        # A peek returns what is buffered; with the buffer empty it receives once, and on a
        # socket that may not wait that is what has arrived already, or nothing.
        try:
            timeout = self._sock.gettimeout()
            self._sock.settimeout(0)
            try:
                return bool(self.peek(1))
            finally:
                self._sock.settimeout(timeout)
        except (OSError, ValueError):  # reset, or closed meanwhile: the selector sees to it
            return False


class _Held:
    """Stands in for a connection's writer while cheroot writes an answer's headers."""

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)


def _linger(sock: socket.socket, wfile: Any) -> None:
    """Send what is buffered, shut the connection for writing, and read and drop what the
    client still sends, for LINGER_SECONDS at most (or until it closes)."""
    try:
        wfile.flush()
        sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + LINGER_SECONDS
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            if not sock.recv(READ_PIECE_BYTES):
                break
    except OSError:  # the client went first, or the wait ran out: close all the same
        pass


def _connection_class(limit: BodyLimit) -> type[HTTPConnection]:
    """cheroot's connection, counted, whose requests are bounded by their route."""

    class RouteBoundRequest(HTTPRequest):
        body_limit = MAX_REQUEST_BODY_BYTES
        held = b""  # the answer's status line and headers, until its body's first piece

        def read_request_headers(self) -> bool:
            complete = super().read_request_headers()  # type: ignore[no-untyped-call]
            self.server.reading(self.conn, False)
            if not complete:
                return False
            length = int(self.inheaders.get(b"Content-Length", 0))  # checked by cheroot
            if not length and not self.chunked_read:
                return True  # no body (a page, a poll): no limit to look up
            method = bytes(self.method).decode("latin-1")
            path = unquote(bytes(self.path).decode("latin-1"))
            self.body_limit = limit(method, path)
            if length <= self.body_limit:
                return True
            self.close_connection = True
            self.conn.linger = True
            answer = error_answer(
                "413 Request Entity Too Large",
                "body_too_large",
                N_("The request body is too large: at most %(max)s bytes here."),
                language=answer_language(self),
                max=self.body_limit,
            )
            self._send_raw(answer)
            return False

        def respond(self) -> None:
            # As cheroot does, but a chunked body bounded by this route rather than the largest
            # one, every body read at a pace (BODY_GRACE_SECONDS, MIN_BODY_BYTES_PER_SECOND),
            # and a large one only while a slot for it is free.
            chunked = bool(self.chunked_read)
            length = int(self.inheaders.get(b"Content-Length", 0))
            # Large by the route, not by what the client declares: bodies just under a declared
            # threshold, trickled at the minimum pace, would otherwise take every thread.
            large = self.body_limit > LARGE_BODY_BYTES and (chunked or length > 0)
            if large and not self.server.large_bodies.acquire(blocking=False):
                self.close_connection = True
                self.conn.linger = True
                self._send_raw(
                    error_answer(
                        "503 Service Unavailable",
                        "server_busy",
                        N_("The server is taking in other uploads; try again in a few seconds."),
                        language=answer_language(self),
                        retry_after_s=LARGE_BODY_RETRY_AFTER_SECONDS,
                    )
                )
                return
            try:
                paced = self.paced = _PacedBody(self.conn.rfile, self)
                self.rfile = (
                    ChunkedRFile(paced, self.body_limit)
                    if chunked
                    else KnownLengthRFile(paced, length)
                )
                try:
                    self.server.gateway(self).respond()
                    if self.ready:
                        self.ensure_headers_sent()
                finally:
                    self._send_held()
                if self.chunked_write:
                    self.conn.wfile.write(b"0\r\n\r\n")
            finally:
                if large:
                    self.server.large_bodies.release()

        def send_headers(self) -> None:
            # cheroot reads the rest of a body the app did not read before answering (to keep the
            # connection); a client that does not send it would hold the thread, and an error
            # there loses the answer. Close instead, lingering so the answer is read.
            paced: _PacedBody | None = getattr(self, "paced", None)
            if not self.close_connection and paced is not None and paced.unread():
                self.close_connection = True
                self.conn.linger = True
            if not any(name.lower() == b"date" for name, _ in self.outheaders):
                self.outheaders.append((b"Date", http_date_now().encode("latin-1")))
            # Held, and sent with the body's first piece: one send, not two, per answer.
            wfile, self.conn.wfile = self.conn.wfile, _Held()
            try:
                super().send_headers()
            finally:
                held, self.conn.wfile = self.conn.wfile, wfile
            self.held = held.data

        def write(self, chunk: bytes) -> None:
            held = self.held
            if held and not self.chunked_write:
                self.held = b""
                self.conn.wfile.write(held + chunk)
                return
            self._send_held()
            super().write(chunk)

        def _send_held(self) -> None:
            held = self.held
            if held:
                self.held = b""
                self.conn.wfile.write(held)

        def simple_response(self, status: Any, msg: Any = "") -> None:
            # cheroot's own answers to a request it cannot take (a malformed request line,
            # headers past MAX_REQUEST_HEADER_BYTES, a timeout mid-request, an error of its own)
            # in the site's JSON error form and the visitor's language, as the app's are.
            text = str(status)
            number = int(text[:3]) if text[:3].isdigit() else 0
            if number == 413 and "header" in str(msg).lower():
                number, text = 431, "431 Request Header Fields Too Large"  # RFC 6585's status
            known = errors.HTTP_CODES.get(number)
            if known is None:  # "100 Continue", and whatever cheroot may add
                super().simple_response(status, msg)
                return
            self.close_connection = True
            code, message = known
            detail = msg.decode("latin-1") if isinstance(msg, bytes) else str(msg or "")
            answer = error_answer(
                text, code, message, language=answer_language(self), detail=detail or None
            )
            self._send_raw(answer)

        def _send_raw(self, answer: bytes) -> None:
            try:
                self.conn.wfile.write(answer)
                self.conn.wfile.flush()
            except OSError:
                pass

    class CountedConnection(HTTPConnection):
        RequestHandlerClass = RouteBoundRequest

        def __init__(self, server: _HTTPServer, sock: socket.socket, makefile: Any) -> None:
            def files(sock: socket.socket, mode: str, bufsize: int) -> Any:
                return SocketReader(sock, bufsize) if "r" in mode else makefile(sock, mode, bufsize)

            super().__init__(server, sock, files)
            # Accepted with the idle timeout; a request under way reads with a shorter one.
            sock.settimeout(REQUEST_IO_TIMEOUT_SECONDS)
            self.waiting = True  # not yet seen readable
            self.linger = False  # closing with a request body still coming (LINGER_SECONDS)
            self.pending: Transfer | None = None  # the answer's rest, for the Sender
            self._counted = True
            server.counted(1)

        def communicate(self) -> bool:
            self.server.reading(self, True)
            try:
                keep = bool(super().communicate())  # type: ignore[no-untyped-call]
            finally:
                self.server.reading(self, False)
            if self.pending is not None:
                self.pending.keep = keep
                return True  # to the server's put_conn, which hands it to the Sender
            return keep

        def close(self) -> None:
            transfer, self.pending = self.pending, None
            if transfer is not None and self.server.sender is not None:
                self.server.sender.abandon(transfer)
            if self.linger:
                self.linger = False
                _linger(self.socket, self.wfile)
            super().close()
            if self._counted:
                self._counted = False
                self.server.counted(-1)

    return CountedConnection


def warm_up(app: Flask, *, listed: Callable[[], None] | None = None) -> list[str]:
    """Prepare every enabled template (loads and verifies those prepared already: a bad one is
    prepared again), side by side in child processes, one per core; returns the ids ready. A
    template that fails, for whatever reason, is logged (by the catalog) and skipped: the site
    still starts, without it. /readyz answers 200 once this is done."""
    catalog = app_services(app).templates
    ready = catalog.warm_up(workers=len(os.sched_getaffinity(0)), listed=listed)
    app.extensions[WARMED_EXTENSION] = True
    return ready


def start_warm_up(app: Flask) -> threading.Thread:
    """``warm_up`` in the background, so the server answers at once: the picker shows each
    template as it becomes ready, and a render of one not ready yet is answered 503 with
    Retry-After (the catalog's ``warming``). Returns once the templates are listed and marked,
    so renders re-queued next wait for the warm-up instead of preparing a second time."""
    listed = threading.Event()

    def run() -> None:
        try:
            ready = warm_up(app, listed=listed.set)
            log.info("templates ready: %s", ", ".join(ready) or "none")
        finally:
            listed.set()

    thread = threading.Thread(target=run, name="loopmark-warm-up", daemon=True)
    thread.start()
    listed.wait()
    return thread


def requeue_unfinished(app: Flask, *, min_age_s: float = 0.0) -> int:
    """Dispatch again the renders accepted but not finished before this start (a crash, a kill,
    a stop with renders queued); returns how many. A records outage is logged, not fatal: the
    renders are dispatched by their visitors' polls meanwhile."""
    try:
        count = app_services(app).render.requeue_unfinished(min_age_s=min_age_s)
    except LoopmarkError as exc:
        log.error("cannot re-queue unfinished renders: %s", exc.reason)
        return 0
    if count:
        log.info("re-queued %d unfinished renders", count)
    return count


def serve(
    app: Flask,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    threads: int = DEFAULT_THREADS,
    warm: bool = True,
) -> None:
    """Run the site until interrupted (Ctrl-C, or SIGTERM: a graceful stop), then stop the
    render pool."""
    configure_logging()
    logging.getLogger("cheroot").setLevel(logging.WARNING)  # a dropped connection is routine
    configure_logging("cheroot")
    server = create_server(app, host, port, threads=threads)  # listening from here
    if warm:
        start_warm_up(app)
    requeue_unfinished(app)
    services = app_services(app)
    sweep = RequeueSweep(app, services.settings.lease_seconds)
    stop = GracefulStop(
        services.render, services.settings.shutdown_grace_seconds, sweep, server.leave
    )
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop.on_signal)
    log.info(
        "serving on http://%s:%s with %d threads",
        server.effective_host,
        server.effective_port,
        threads,
    )
    sweep.start()
    try:
        server.run()  # returns on KeyboardInterrupt and SystemExit
    finally:
        sweep.stop()
        stop.serving = False
        server.close()
        services.close()  # hands back any render still running (Ctrl-C, a second SIGTERM)


class RequeueSweep:
    """Every ``interval_s`` (a lease) while serving, dispatch again the unfinished renders queued
    at least that long ago: a render whose worker was killed is found once its lease lapses,
    and one that found the queue full once there is room. Submitting a job the pool holds
    already changes nothing, and the lease keeps a render single."""

    def __init__(self, app: Flask, interval_s: float) -> None:
        self.app = app
        self.interval_s = interval_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loopmark-requeue", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.wait(self.interval_s):
            requeue_unfinished(self.app, min_age_s=self.interval_s)


class GracefulStop:
    """SIGTERM (a container or systemd stopping us): the render service stops taking renders at
    once (new ones are answered 503 + Retry-After) while the server keeps answering polls, cache
    hits and pages; running renders get ``grace_s`` to finish, those still running are handed
    back to the queue, then the server's loop is left as Ctrl-C leaves it, and the process exits
    0. Queued renders stay recorded for the next start. A second SIGTERM stops at once."""

    def __init__(
        self,
        render: RenderService,
        grace_s: float,
        sweep: RequeueSweep,
        leave: Callable[[], None],
    ) -> None:
        self.render = render
        self.leave = leave
        self.grace_s = grace_s
        self.sweep = sweep
        self.serving = True
        self._stopping: threading.Thread | None = None

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stopping is not None:
            raise SystemExit(0)
        log.info("stopping: running renders get %.0f s to finish", self.grace_s)
        # Not in the handler: the main thread runs the server's loop, which must keep serving.
        self._stopping = threading.Thread(target=self._drain, name="loopmark-stop", daemon=True)
        self._stopping.start()

    def _drain(self) -> None:
        self.sweep.stop()
        try:
            self.render.stop(grace_s=self.grace_s)
        except Exception:
            log.exception("stopping the render service failed")
        finally:
            if self.serving:
                self.leave()  # server.run() returns
