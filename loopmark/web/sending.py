"""Sending answers' bodies from one thread, so a slow download holds a descriptor, not a request
thread.

A request thread that has a file to answer with (Werkzeug's ``send_file``, through the server's
``wsgi.file_wrapper``), or a last piece of body larger than SMALL_ANSWER_BYTES, writes what the
socket takes at once, without waiting; if anything is left, it hands the connection and the rest
(the open file, an offset and a length, or the bytes) to the Sender and is free at once. The
Sender's one thread drives every such transfer with an epoll selector (EVENT_WRITE), the file
by ``os.sendfile`` (zero copy), and then gives the connection back: kept alive, to the server's
selector for its next request; otherwise closed.

A phone reading a 3 MB GIF at 128 kbit/s used to hold a request thread for as long as the
kernel's send buffer could not take the rest (each write waiting up to REQUEST_IO_TIMEOUT_SECONDS
for room): sixteen of them took every thread, and pages, polls and static files stopped
answering. Bounds, so a hostile
reader cannot hold a descriptor for ever: a transfer whose reader takes nothing for ``stall_s``,
or falls behind ``grace_s`` plus a second per ``min_bytes_per_s`` the reader has taken, is dropped
and its connection reset; past ``capacity`` transfers, the request thread writes as before.
"""

from __future__ import annotations

import collections
import fcntl
import logging
import os
import selectors
import socket
import struct
import termios
import threading
import time
from collections.abc import Callable
from typing import IO, Any, Protocol

from cheroot.wsgi import Gateway_10
from werkzeug.wsgi import FileWrapper

log = logging.getLogger(__name__)

# An answer (a file, or a body's one piece) up to this size goes out as it always has (one
# blocking send with the held headers): a socket's send buffer takes it at once, even on a
# fresh connection.
SMALL_ANSWER_BYTES = 64 * 1024
# The most one transfer sends per turn of the Sender's loop, so a fast reader of a large file
# does not keep the others waiting.
TURN_BYTES = 512 * 1024
# How often the Sender looks for transfers that stalled or fell behind.
CHECK_EVERY_SECONDS = 0.5
# A download must keep up (like a request body, more gently): GRACE_SECONDS plus a second for
# every MIN_BYTES_PER_SECOND the reader has taken. 4 KB/s is 32 kbit/s, below any phone that can
# show a GIF; a reader that trickles a file at a byte a second is cut off after the grace.
GRACE_SECONDS = 10.0
MIN_BYTES_PER_SECOND = 4 * 1024
# How often a stopping Sender looks whether its transfers have ended.
DRAIN_POLL_SECONDS = 0.05
# SO_LINGER on, zero seconds: closing resets the connection and drops what is unsent.
RESET = struct.pack("ii", 1, 0)
QUEUED = struct.pack("i", 0)  # the ioctl's buffer: bytes in a socket's send queue (SIOCOUTQ)


class Connection(Protocol):
    """What the Sender needs of a server connection (cheroot's HTTPConnection)."""

    socket: Any

    def close(self) -> None: ...


class SendableFile(FileWrapper):
    """The server's ``wsgi.file_wrapper``: a file answer that the server may send itself (by
    ``os.sendfile``) rather than iterate; iterable all the same for anything that wraps it."""


class Transfer:
    """The rest of one answer: bytes still to send (the held headers, or a body's last piece),
    then ``length`` bytes of ``file`` from ``offset``. ``body`` is closed when it ends."""

    def __init__(
        self,
        conn: Connection,
        head: bytes,
        *,
        file: IO[bytes] | None = None,
        offset: int = 0,
        length: int = 0,
        body: Any = None,
    ) -> None:
        self.conn = conn
        self.fd: int = conn.socket.fileno()
        self.head = memoryview(head)
        self.file_fd = file.fileno() if file is not None else -1
        self.offset = offset
        self.left = length if file is not None else 0
        self.body = body
        self.keep = False  # the connection is kept alive once the answer is sent
        self.started = self.progressed = time.monotonic()
        self.sent = 0  # bytes the socket took (some still in its queue)
        self.taken = 0  # bytes the reader had taken when last looked at (``late``)

    @property
    def done(self) -> bool:
        return not self.head and not self.left

    def step(self, budget: int | None = None) -> bool:
        """Send what the socket takes now (``budget`` bytes at most), never waiting; whether
        all is sent. OSError when the peer is gone or the file ended early."""
        sent = 0
        try:
            while self.head and (budget is None or sent < budget):
                n = os.write(self.fd, self.head)
                self.head = self.head[n:]
                sent += n
            while self.left and (budget is None or sent < budget):
                piece = self.left if budget is None else min(self.left, budget - sent)
                n = os.sendfile(self.fd, self.file_fd, self.offset, piece)
                if n == 0:
                    raise OSError(f"the file ended {self.left} bytes early")
                self.offset += n
                self.left -= n
                sent += n
        except BlockingIOError:
            pass
        self.sent += sent
        return self.done

    def close_body(self) -> None:
        body, self.body = self.body, None
        self.head = memoryview(b"")
        self.left = 0
        if body is not None and hasattr(body, "close"):
            try:
                body.close()
            except Exception:  # a file's close: nothing the client can be told
                log.exception("closing an answer's body failed")

    def late(self, now: float, stall_s: float, grace_s: float, min_bytes_per_s: float) -> str:
        """Why the transfer should be dropped now ('' if it should not). Progress is what the
        reader takes, not what we send: a send fills a buffer of megabytes at once, and the
        socket is writable again only once a third of it has drained (at 16 KB/s, a minute)."""
        delivered = self.delivered()
        if delivered > self.taken:
            self.taken, self.progressed = delivered, now
        if now - self.progressed > stall_s:
            return f"nothing read for {stall_s:.0f} s"
        if now - self.started > grace_s + delivered / min_bytes_per_s:
            return f"{delivered} bytes read in {now - self.started:.0f} s"
        return ""

    def delivered(self) -> int:
        """Bytes the peer has taken: those sent less those still in the socket's queue."""
        try:
            queued = struct.unpack("i", fcntl.ioctl(self.fd, termios.TIOCOUTQ, QUEUED))[0]
        except OSError:
            queued = 0
        return max(0, self.sent - int(queued))


class Sender:
    """One thread sending the rest of many answers. ``reserve()`` a place before starting a
    transfer (False: full, write as before); ``submit`` what the socket did not take at once
    (or ``release`` the place). ``put_back(conn)`` receives a kept-alive connection once its
    answer is sent; others are closed. ``close()`` ends every transfer (their connections
    closed) and the thread."""

    def __init__(
        self,
        put_back: Callable[[Any], None],
        *,
        capacity: int,
        stall_s: float,
        grace_s: float = GRACE_SECONDS,
        min_bytes_per_s: float = MIN_BYTES_PER_SECOND,
    ) -> None:
        self.put_back = put_back
        self.capacity = capacity
        self.stall_s = stall_s
        self.grace_s = grace_s
        self.min_bytes_per_s = min_bytes_per_s
        self._lock = threading.Lock()
        self._held = 0  # places reserved: transfers under way or about to be
        self._incoming: collections.deque[Transfer] = collections.deque()
        self._closed = False
        self._selector = selectors.DefaultSelector()  # epoll on Linux
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._pipe_closed = False
        self._selector.register(self._wake_read, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._run, name="loopmark-sender", daemon=True)
        self._thread.start()

    @property
    def transfers(self) -> int:
        """Transfers under way (and places reserved for ones about to start)."""
        return self._held

    def reserve(self) -> bool:
        with self._lock:
            if self._closed or self._held >= self.capacity:
                return False
            self._held += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._held -= 1

    def submit(self, transfer: Transfer) -> None:
        """From a request thread, once it is done with the connection: the Sender owns it."""
        with self._lock:
            closed = self._closed
            if not closed:
                self._incoming.append(transfer)
        if closed:
            self._drop(transfer, "the server is stopping")
            return
        self._wake()

    def close(self, timeout_s: float = 10.0, *, drain_s: float = 0.0) -> None:
        """End every transfer and the thread; those under way first get ``drain_s`` to end
        by themselves (a download nearly done is not cut at a graceful stop)."""
        deadline = time.monotonic() + drain_s
        while self._held and not self._closed and time.monotonic() < deadline:
            time.sleep(DRAIN_POLL_SECONDS)
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake()
        self._thread.join(timeout_s)

    def _wake(self) -> None:
        # Under the lock, against the pipe's closing: a descriptor closed and reused meanwhile
        # would take the byte into somebody else's socket (review).
        with self._lock:
            if self._pipe_closed:
                return
            try:
                os.write(self._wake_write, b"x")
            except BlockingIOError:  # woken already
                pass

    def _run(self) -> None:
        transfers: dict[int, Transfer] = {}
        next_check = time.monotonic() + CHECK_EVERY_SECONDS
        try:
            while not self._closed:
                for key, _ in self._selector.select(CHECK_EVERY_SECONDS):
                    if key.fd == self._wake_read:
                        self._take_incoming(transfers)
                    else:
                        self._turn(transfers, transfers[key.fd])
                now = time.monotonic()
                if now >= next_check:
                    next_check = now + CHECK_EVERY_SECONDS
                    self._drop_late(transfers, now)
        except Exception:  # never leave transfers (and their files) behind
            log.exception("the sender failed: closing its transfers")
            with self._lock:
                self._closed = True
        finally:
            with self._lock:
                waiting = list(self._incoming)
                self._incoming.clear()
            for transfer in [*transfers.values(), *waiting]:
                self._drop(transfer, "the server is stopping", quiet=True)
            self._selector.close()
            with self._lock:
                self._pipe_closed = True
                os.close(self._wake_read)
                os.close(self._wake_write)

    def _take_incoming(self, transfers: dict[int, Transfer]) -> None:
        try:
            while os.read(self._wake_read, 4096):
                pass
        except BlockingIOError:
            pass
        while True:
            with self._lock:
                if not self._incoming:
                    return
                transfer = self._incoming.popleft()
            transfers[transfer.fd] = transfer
            self._selector.register(transfer.fd, selectors.EVENT_WRITE)

    def _turn(self, transfers: dict[int, Transfer], transfer: Transfer) -> None:
        try:
            done = transfer.step(TURN_BYTES)
        except OSError as exc:
            self._forget(transfers, transfer)
            self._drop(transfer, f"peer gone: {exc}", quiet=True)
            return
        if done:
            self._forget(transfers, transfer)
            self._finish(transfer)

    def _drop_late(self, transfers: dict[int, Transfer], now: float) -> None:
        for transfer in list(transfers.values()):
            reason = transfer.late(now, self.stall_s, self.grace_s, self.min_bytes_per_s)
            if reason:
                self._forget(transfers, transfer)
                # Reset, not closed: the kernel would otherwise keep sending what the socket
                # holds (up to its send buffer, megabytes) to a reader that does not read.
                try:
                    transfer.conn.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
                except OSError:
                    pass
                self._drop(transfer, reason)

    def _forget(self, transfers: dict[int, Transfer], transfer: Transfer) -> None:
        del transfers[transfer.fd]
        self._selector.unregister(transfer.fd)

    def abandon(self, transfer: Transfer) -> None:
        """A transfer never submitted (its connection closed first): its body closed, its
        place released."""
        transfer.close_body()
        self.release()

    def _finish(self, transfer: Transfer) -> None:
        transfer.close_body()
        self.release()
        if not transfer.keep:
            transfer.conn.close()
            return
        try:
            self.put_back(transfer.conn)
        except (KeyError, ValueError, OSError) as exc:  # the server stopped meanwhile
            log.debug("connection not put back: %s", exc)
            transfer.conn.close()

    def _drop(self, transfer: Transfer, reason: str, *, quiet: bool = False) -> None:
        if not quiet:
            log.info("download dropped (%s): connection closed", reason)
        transfer.close_body()
        self.release()
        try:
            transfer.conn.close()
        except OSError:
            pass


def file_part(response: Any, length: int | None) -> tuple[IO[bytes], int] | None:
    """The file and the offset an answer's body starts at, when the body is a SendableFile
    (whole, or a Range of one that nothing has read yet) of more than SMALL_ANSWER_BYTES, with a
    real descriptor holding at least ``length`` bytes from there; else None (the body is
    iterated as usual)."""
    if length is None or length <= SMALL_ANSWER_BYTES:
        return None
    offset: int | None = None
    wrapper: Any = response
    if not isinstance(wrapper, SendableFile):  # Werkzeug's _RangeWrapper over one (a 206)?
        wrapper = getattr(response, "iterable", None)  # duck-typed: the class is private
        offset = getattr(response, "start_byte", None)
        fresh = getattr(response, "read_length", None) == 0
        if not isinstance(wrapper, SendableFile) or not fresh or not isinstance(offset, int):
            return None
    file: IO[bytes] = wrapper.file
    try:
        fd = file.fileno()
        if offset is None:
            offset = file.tell()
        if os.fstat(fd).st_size < offset + length:
            return None
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is an OSError
        return None
    return file, offset


class SendingGateway(Gateway_10):
    """cheroot's WSGI 1.0 gateway, offering ``wsgi.file_wrapper`` and handing what a slow
    reader does not take at once to the server's Sender (``req.server.sender``)."""

    def get_environ(self) -> dict[str, Any]:  # type: ignore[override]  # stubs say None
        env: dict[str, Any] = super().get_environ()  # type: ignore[no-untyped-call]
        env["wsgi.file_wrapper"] = SendableFile
        return env

    def respond(self) -> None:
        response = self.req.server.wsgi_app(self.env, self.start_response)
        handed = False
        try:
            part = file_part(response, self.remaining_bytes_out)
            if part is not None and self._can_hand_off():
                handed = self._send_file(response, *part)
            if not handed:
                for chunk in filter(None, response):
                    if not isinstance(chunk, bytes):
                        raise ValueError("WSGI Applications must yield bytes")
                    self.write(chunk)
        finally:
            if not handed:
                self.req.ensure_headers_sent()
                if hasattr(response, "close"):
                    response.close()

    def write(self, chunk: bytes) -> None:
        # The body's last piece, when large (a compressed static file, a big page): what the
        # socket does not take at once goes to the Sender.
        last = self.remaining_bytes_out == len(chunk)
        if last and len(chunk) > SMALL_ANSWER_BYTES and self._can_hand_off():
            self.req.ensure_headers_sent()
            if not self.req.conn.linger and self.req.server.sender.reserve():
                head, self.req.held = self.req.held, b""
                self.remaining_bytes_out = 0
                self._start(Transfer(self.req.conn, head + chunk))
                return
        super().write(chunk)

    def _can_hand_off(self) -> bool:
        req = self.req
        return (
            req.server.sender is not None
            and req.server.ssl_adapter is None
            and not req.chunked_write
            and getattr(req.conn, "pending", None) is None
        )

    def _send_file(self, response: Any, file: IO[bytes], offset: int) -> bool:
        """Start sending the file's answer; False if the Sender is full (iterate instead)."""
        req = self.req
        req.ensure_headers_sent()
        if req.conn.linger or not req.server.sender.reserve():
            return False
        head, req.held = req.held, b""
        length = self.remaining_bytes_out
        self.remaining_bytes_out = 0
        self._start(
            Transfer(req.conn, head, file=file, offset=offset, length=length, body=response)
        )
        return True

    def _start(self, transfer: Transfer) -> None:
        """Send what the socket takes now; the rest waits for the Sender (the connection's
        ``pending``, submitted once the request thread is done with it)."""
        sender: Sender = self.req.server.sender
        try:
            done = transfer.step()
        except OSError:  # the client went: close the connection, as a failed write would
            done = True
            self.req.close_connection = True
        if done:
            transfer.close_body()
            sender.release()
            return
        self.req.conn.pending = transfer
