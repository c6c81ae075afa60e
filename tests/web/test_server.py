"""The real server (cheroot, as `loopmark serve` runs it) on loopback: idle connections, the
connection limit and idle timeout, body bounds, trusted proxies."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from loopmark.admin import auth
from loopmark.web import server as web_server
from loopmark.web.server import create_server
from tests.site.conftest import MakeApp, render_via_api
from tests.web.idle_connections import (
    close_all,
    get,
    open_idle,
    open_silent,
    raise_descriptor_limit,
)

IDLE_CONNECTIONS = 1500
Serve = Callable[[Flask], int]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """``serve(app)`` runs it on the real server on loopback; its port. Stopped after."""
    running: list[tuple[Any, threading.Thread]] = []

    def start(app: Flask) -> int:
        server = create_server(app, "127.0.0.1", 0, threads=4)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        running.append((server, thread))
        return int(server.effective_port)

    yield start
    for server, thread in running:
        server.close()
        thread.join(10)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("silent", [False, True], ids=["keep-alive", "sending-nothing"])
def test_server_holds_idle_connections_and_keeps_serving(
    make_app: MakeApp, serve: Serve, silent: bool
) -> None:
    # keep-alive: each made one request. select() could not watch a descriptor above 1024:
    # waitress died with ValueError at ~500 (client and server sockets both count here).
    # sending-nothing: a browser's spare connections. cheroot as shipped hands a fresh
    # connection to a request thread at once, which waits there for a request: beside 1,500 of
    # them nothing was answered for minutes. Ours wait in the selector until they send.
    raise_descriptor_limit(3 * IDLE_CONNECTIONS + 500)
    app = make_app()
    key = render_via_api(app.test_client(), "Still here")["key"]
    port = serve(app)
    sockets, refused = (open_silent if silent else open_idle)(port, IDLE_CONNECTIONS)
    try:
        assert (len(sockets), refused) == (IDLE_CONNECTIONS, 0)
        status, body = get(port, f"/s/{key}")
        assert status == 200, body[:300]
        assert b"Still here" in body
        assert get(port, "/healthz")[0] == 200
    finally:
        close_all(sockets)


def test_past_the_connection_limit_new_connections_wait_until_one_closes(
    make_app: MakeApp, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web_server, "CONNECTION_LIMIT", 3)
    port = serve(make_app())
    sockets, refused = open_idle(port, 3)
    assert (len(sockets), refused) == (3, 0)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as waiting:
        # Connected (the kernel's backlog holds it) but not accepted: no answer yet.
        waiting.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        waiting.settimeout(2)
        with pytest.raises(TimeoutError):
            waiting.recv(4096)
        # Room again once the server sees connections go: the waiting one is answered.
        close_all(sockets)
        waiting.settimeout(30)
        assert waiting.recv(4096).startswith(b"HTTP/1.1 200 ")


@pytest.mark.timeout(120)
def test_clients_trickling_their_headers_are_cut_off(
    make_app: MakeApp, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A request thread reads a request's headers itself: twice as many clients as threads,
    # each sending a header byte a second, would hold every thread for as long as they like.
    monkeypatch.setattr(web_server, "HEADER_DEADLINE_SECONDS", 2.0)
    port = serve(make_app())  # 4 threads
    stop = threading.Event()
    slow = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(8)]
    cut: list[socket.socket] = []

    def trickle(sock: socket.socket) -> None:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        while not stop.wait(1.0):
            try:
                sock.sendall(b"X")
            except OSError:
                cut.append(sock)
                return

    threads = [threading.Thread(target=trickle, args=(sock,), daemon=True) for sock in slow]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)  # every thread is now reading a trickle
        status, _ = get(port, "/healthz")
        assert status == 200
        deadline = time.monotonic() + 30
        while len(cut) < len(slow) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(cut) == len(slow)  # the server closed every one of them
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
        close_all(slow)


def test_an_idle_connection_is_closed_after_the_idle_timeout(
    make_app: MakeApp, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert web_server.IDLE_TIMEOUT_SECONDS > 60  # longer than a load balancer's
    monkeypatch.setattr(web_server, "IDLE_TIMEOUT_SECONDS", 1)
    port = serve(make_app())
    (answered,), _ = open_idle(port, 1)  # a keep-alive connection after one request
    silent = socket.create_connection(("127.0.0.1", port), timeout=30)  # never sends anything
    try:
        started = time.monotonic()
        for sock in (answered, silent):
            sock.settimeout(30)
            while sock.recv(65536):  # the rest of the answer, then the server's close
                pass
        assert time.monotonic() - started < 20
    finally:
        close_all([answered, silent])


def test_a_body_over_the_route_limit_is_refused_before_it_is_sent(
    make_app: MakeApp, serve: Serve
) -> None:
    port = serve(make_app())
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        # Headers only: the server answers 413 without waiting for (or buffering) the body.
        sock.sendall(
            b"POST /api/renders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10000000\r\n\r\n"
        )
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 413 "), answer
        assert b'"body_too_large"' in answer
    status, _ = get(port, "/healthz")
    assert status == 200


def json_of(answer: bytes) -> dict[str, Any]:
    """The JSON body of a whole answer."""
    body: dict[str, Any] = json.loads(answer.partition(b"\r\n\r\n")[2])
    return body


@pytest.mark.parametrize(
    ("target", "extra", "language", "message"),
    [
        ("/api/renders", b"", "en", "The request body is too large: at most 16384 bytes here."),
        (
            "/api/renders",
            b"Accept-Language: de-DE,de;q=0.9,en;q=0.5\r\n",
            "de",
            "Die Anfrage ist zu gro\u00df: hier sind h\u00f6chstens 16384 Bytes erlaubt.",
        ),
        ("/api/renders", b"Accept-Language: en-GB, de;q=0.5\r\n", "en", None),
        ("/api/renders", b"Accept-Language: fr\r\n", "en", None),  # not shipped: English
        ("/api/renders", b"Cookie: loopmark_lang=de\r\nAccept-Language: en\r\n", "de", None),
        ("/api/renders?lang=de", b"Accept-Language: en\r\n", "de", None),
    ],
    ids=["default", "accept-language", "english first", "unshipped", "cookie", "query"],
)
def test_the_servers_own_answers_speak_the_visitors_language(
    make_app: MakeApp,
    serve: Serve,
    target: str,
    extra: bytes,
    language: str,
    message: str | None,
) -> None:
    """The 413 the server gives before the app sees the request, in the language the app
    would answer in (web.i18n: ?lang=, the cookie, Accept-Language), its code unchanged."""
    port = serve(make_app())
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            f"POST {target} HTTP/1.1\r\nHost: x\r\n".encode()
            + extra
            + b"Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n"
        )
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert f"\r\nContent-Language: {language}\r\n".encode() in answer
    assert b"\r\nVary: Accept-Language, Cookie\r\n" in answer
    error = json_of(answer)["error"]
    assert error["code"] == "body_too_large"
    assert ("zu gro\u00df" in error["message"]) == (language == "de"), error
    if message is not None:
        assert error["message"] == message


def read_answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(30)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def post_head(port: int, length: int, extra: bytes = b"") -> socket.socket:
    """A connection that has sent a JSON POST's headers (``length`` bytes of body declared,
    ``extra`` header lines)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        b"POST /api/renders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + extra
        + f"Content-Length: {length}\r\n\r\n".encode()
    )
    return sock


@pytest.mark.timeout(120)
def test_a_body_that_falls_behind_is_cut_off_and_its_thread_freed(
    make_app: MakeApp, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A slow-loris POST: headers at once, then its body a byte a second.
    monkeypatch.setattr(web_server, "BODY_GRACE_SECONDS", 1.0)
    port = serve(make_app())  # 4 threads
    slow = [post_head(port, 1000) for _ in range(4)]  # one for every thread
    stop = threading.Event()

    def trickle(sock: socket.socket) -> None:
        while not stop.wait(0.5):
            try:
                sock.sendall(b" ")
            except OSError:
                return

    threads = [threading.Thread(target=trickle, args=(sock,), daemon=True) for sock in slow]
    for thread in threads:
        thread.start()
    try:
        started = time.monotonic()
        answers = [read_answer(sock) for sock in slow]
        # Each was answered (the app saw a client gone: 400) and closed once it fell behind,
        # within the grace and one read's timeout, not after its 1,000 seconds.
        assert all(answer.startswith(b"HTTP/1.1 400 ") for answer in answers), answers
        assert time.monotonic() - started < web_server.REQUEST_IO_TIMEOUT_SECONDS + 5
        status, _ = get(port, "/healthz")
        assert status == 200
    finally:
        stop.set()
        close_all(slow)

    # A body that keeps up is read whole, however it is split.
    with post_head(port, 15_000 + 2) as sock:  # under the route's 16 KB
        sock.sendall(b'{"')
        for _ in range(3):
            sock.sendall(b"x" * 5000)
            time.sleep(0.2)
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400 ") and b"not valid JSON" in answer, answer


@pytest.mark.timeout(120)
def test_large_bodies_get_a_share_of_the_threads_and_the_rest_wait_outside(
    make_app: MakeApp, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Large by the route's bound (here /api/renders' 16 KB), whatever a body declares.
    monkeypatch.setattr(web_server, "LARGE_BODY_BYTES", 1000)
    port = serve(make_app())  # 4 threads: 2 for large bodies
    assert web_server.large_body_slots(4) == 2
    holding = [post_head(port, 5000) for _ in range(2)]  # their bodies still to come
    try:
        time.sleep(0.5)
        with post_head(port, 5000) as third:
            answer = read_answer(third)  # at once: not a byte of its body was read
        assert answer.startswith(b"HTTP/1.1 503 "), answer
        assert b"Retry-After: 10\r\n" in answer and b'"server_busy"' in answer
        assert "other uploads" in json_of(answer)["error"]["message"]
        with post_head(port, 5000, b"Accept-Language: de\r\n") as german:
            answer = read_answer(german)  # in the visitor's language, the code unchanged
        assert answer.startswith(b"HTTP/1.1 503 "), answer
        assert json_of(answer)["error"] == {
            "code": "server_busy",
            "message": "Der Server nimmt gerade andere Uploads entgegen; versuch es bitte in "
            "ein paar Sekunden noch einmal.",
        }
        status, _ = get(port, "/healthz")  # requests without a body are not counted
        assert status == 200
        holding[0].sendall(b"[" + b" " * 4998 + b"]")  # one finishes: its slot is free
        assert holding[0].recv(4096).startswith(b"HTTP/1.1 422 ")
        deadline = time.monotonic() + 10  # the slot is let go just after the answer is sent
        while True:
            with post_head(port, 5000) as next_one:
                try:
                    next_one.sendall(b"[" + b" " * 4998 + b"]")
                except OSError:  # refused already: the 503 is waiting to be read
                    pass
                answer = next_one.recv(4096)
            if not answer.startswith(b"HTTP/1.1 503 ") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert answer.startswith(b"HTTP/1.1 422 "), answer
    finally:
        close_all(holding)


@pytest.mark.timeout(120)
def test_an_answer_given_before_the_body_is_read_reaches_the_client(
    make_app: MakeApp, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An app that answers without reading the body (a 404 here): the connection is closed
    rather than drained, lingering so the answer is read, even from a client that never sends
    its body (before: the drain waited for it, fell behind the pace and lost the answer)."""
    monkeypatch.setattr(web_server, "BODY_GRACE_SECONDS", 1.0)
    port = serve(make_app())
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            b"POST /no/such/route HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10000\r\n\r\n{"
        )
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 404 "), answer
    assert b"Connection: close" in answer
    assert time.monotonic() - started < web_server.LINGER_SECONDS + 5


@pytest.mark.timeout(120)
def test_a_chunked_body_trickled_inside_one_line_is_cut_off(
    make_app: MakeApp, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk-size line sent a byte at a time, never ending: paced like any body."""
    monkeypatch.setattr(web_server, "BODY_GRACE_SECONDS", 1.0)
    port = serve(make_app())
    stop = threading.Event()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        b"POST /api/renders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )

    def trickle() -> None:
        while not stop.wait(0.5):
            try:
                sock.sendall(b"0")
            except OSError:
                return

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        answer = read_answer(sock)
        assert answer.startswith(b"HTTP/1.1 4"), answer
        assert time.monotonic() - started < web_server.REQUEST_IO_TIMEOUT_SECONDS + 5
    finally:
        stop.set()
        thread.join(5)
        sock.close()


def test_uploads_keep_their_own_limit(app: Flask) -> None:
    assert web_server.VIEW_BODY_LIMIT_ATTRIBUTE == auth.BODY_LIMIT_ATTRIBUTE
    limit = web_server.body_limits(app)
    assert limit("POST", "/api/renders") == 16 * 1024
    assert limit("POST", "/graphql") == 16 * 1024
    assert limit("POST", "/no/such/route") == 16 * 1024
    assert limit("POST", "/admin/templates/new") == 25 * 1024 * 1024


def test_descriptor_limit_and_connection_limit(caplog: pytest.LogCaptureFixture) -> None:
    assert web_server.descriptor_limits(65536)[0] == web_server.CONNECTION_LIMIT
    assert (
        web_server.descriptor_limits(1024)[0] == (1024 - web_server.RESERVED_DESCRIPTORS) * 2 // 3
    )
    assert "LimitNOFILE" in caplog.text


# -- proxies -----------------------------------------------------------------------------------

FORWARDED = {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"}


def check(port: int, forwarded_for: str) -> int:
    status, _ = _post_json(port, "/api/captions/check", forwarded_for)
    return status


def _post_json(port: int, path: str, forwarded_for: str) -> tuple[int, bytes]:
    import http.client
    import json

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(
            "POST",
            path,
            body=json.dumps({"template": "small", "caption": "Hello"}),
            headers={"Content-Type": "application/json", "X-Forwarded-For": forwarded_for},
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def head(port: int, path: str, headers: dict[str, str]) -> dict[str, str]:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        return dict(response.getheaders())
    finally:
        connection.close()


def test_a_trusted_proxy_gives_the_client_address_and_scheme(
    make_app: MakeApp, serve: Serve
) -> None:
    app = make_app(
        LOOPMARK_PROXY_HOPS="1",
        LOOPMARK_TRUSTED_PROXIES="127.0.0.1",
        LOOPMARK_RATE_LIMIT_CAPTIONS="2/minute",
        LOOPMARK_RATE_LIMIT_ADDRESS_FACTOR="1",
    )
    port = serve(app)
    assert "Strict-Transport-Security" in head(port, "/healthz", FORWARDED)
    assert "Strict-Transport-Security" not in head(port, "/healthz", {})
    # Limits count per forwarded client, not per proxy.
    assert [check(port, "198.51.100.7") for _ in range(3)] == [200, 200, 429]
    assert check(port, "198.51.100.8") == 200


def test_an_untrusted_peer_cannot_forward(make_app: MakeApp, serve: Serve) -> None:
    app = make_app(
        LOOPMARK_PROXY_HOPS="1",
        LOOPMARK_TRUSTED_PROXIES="10.0.0.0/8",  # not loopback, where the test comes from
        LOOPMARK_RATE_LIMIT_CAPTIONS="2/minute",
        LOOPMARK_RATE_LIMIT_ADDRESS_FACTOR="1",
    )
    port = serve(app)
    assert "Strict-Transport-Security" not in head(port, "/healthz", FORWARDED)
    # Forged addresses all count against the real peer.
    assert [check(port, f"198.51.100.{n}") for n in range(3)] == [200, 200, 429]


def test_no_proxy_hops_ignores_forwarding_headers(make_app: MakeApp, serve: Serve) -> None:
    port = serve(make_app())
    assert "Strict-Transport-Security" not in head(port, "/healthz", FORWARDED)


def test_an_answer_goes_out_in_one_send_headers_with_its_body(
    make_app: MakeApp, serve: Serve, socket_writes: list[bytes]
) -> None:
    app = make_app()
    key = render_via_api(app.test_client(), "One send")["key"]
    port = serve(app)
    sent = socket_writes
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for method, path in (("GET", f"/s/{key}"), ("GET", f"/api/renders/{key}")):
            sent.clear()
            connection.request(method, path)
            response = connection.getresponse()
            body = response.read()
            assert response.status == 200 and body
            # cheroot sent the status line and headers, then the body: two sends an answer.
            assert len(sent) == 1, [s[:40] for s in sent]
            assert sent[0].startswith(b"HTTP/1.1 200 OK\r\n") and sent[0].endswith(body)
            assert response.getheader("Date", "").endswith(" GMT")
        # An answer without a body still gets its headers (and the connection stays usable).
        sent.clear()
        connection.request("HEAD", f"/s/{key}")
        response = connection.getresponse()
        assert response.status == 200 and response.read() == b""
        assert len(sent) == 1 and sent[0].endswith(b"\r\n\r\n")
        connection.request("GET", "/healthz")
        assert connection.getresponse().status == 200
    finally:
        connection.close()


def read_answers(sock: socket.socket, count: int) -> list[bytes]:
    """``count`` whole answers (each with a Content-Length) read from a kept-alive connection."""
    sock.settimeout(30)
    data, answers = b"", list[bytes]()
    while len(answers) < count:
        head, sep, rest = data.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            None,
        )
        if sep and length is not None and len(rest) >= length:
            answers.append(head + sep + rest[:length])
            data = rest[length:]
            continue
        chunk = sock.recv(65536)
        assert chunk, f"closed after {len(answers)} answers"
        data += chunk
    return answers


@pytest.mark.timeout(60)
def test_pipelined_requests_and_later_ones_on_a_kept_connection_are_answered(
    make_app: MakeApp, serve: Serve
) -> None:
    # The connection's reader is the C BufferedReader (web_server.SocketReader): once an answer
    # is out, a request already buffered behind it (pipelined) is served at once, and with none
    # there the connection waits in the selector for the next one (a peek that never waits).
    port = serve(make_app())
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request * 3)
        answers = read_answers(sock, 3)
        assert all(a.startswith(b"HTTP/1.1 200 ") for a in answers), answers
        time.sleep(0.3)  # idle in the selector now: the next request arrives later
        sock.sendall(request)
        assert read_answers(sock, 1)[0].startswith(b"HTTP/1.1 200 ")
        # Half a request, then the rest: the reader waits for it, as cheroot's did.
        sock.sendall(request[:10])
        time.sleep(0.3)
        sock.sendall(request[10:])
        assert read_answers(sock, 1)[0].startswith(b"HTTP/1.1 200 ")


def test_the_socket_reader_says_whether_a_request_is_here_without_waiting() -> None:
    left, right = socket.socketpair()
    with left, right:
        left.settimeout(5)
        reader = web_server.SocketReader(left)
        started = time.monotonic()
        assert not reader.has_data()  # nothing sent: answered at once, not after the timeout
        assert time.monotonic() - started < 1
        assert left.gettimeout() == 5  # the socket's timeout is left as it was
        right.sendall(b"GET / HTTP/1.1\r\n")
        time.sleep(0.05)
        assert reader.has_data()
        assert reader.readline() == b"GET / HTTP/1.1\r\n"  # nothing lost to the peek
        assert not reader.has_data()
        right.close()
        assert not reader.has_data()  # the peer gone: the selector finds it


def _raw(port: int, request: bytes) -> tuple[str, dict[str, str], dict[str, Any]]:
    """Send ``request`` as it is; the answer's status line, headers and JSON body."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        answer = read_answer(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return status, headers, json.loads(body)


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"NOT A REQUEST LINE\r\n\r\n", "400 Bad Request", "bad_request"),
        (
            b"GET / HTTP/2.7\r\nHost: x\r\n\r\n",
            "505 HTTP Version Not Supported",
            "http_version_not_supported",
        ),  # fmt: skip
        (
            b"GET /" + b"a" * (70 * 1024) + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            "414 Request-URI Too Long",
            "request_uri_too_large",
        ),  # fmt: skip
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * (70 * 1024) + b"\r\n\r\n",
            "431 Request Header Fields Too Large",
            "request_header_fields_too_large",
        ),  # fmt: skip
        (
            b"POST /api/renders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
            "501 Unimplemented",
            "not_implemented",
        ),  # fmt: skip
    ],
    ids=["malformed", "version", "long-address", "big-headers", "encoding"],
)
def test_requests_the_server_cannot_read_get_the_sites_json_errors(
    make_app: MakeApp, serve: Serve, request_bytes: bytes, status: str, code: str
) -> None:
    # cheroot answered these in English plain text; the site's JSON error form now, as the app's.
    port = serve(make_app())
    got, headers, body = _raw(port, request_bytes)
    assert got == f"HTTP/1.1 {status}"
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert body["error"]["code"] == code and body["error"]["message"]
    assert get(port, "/healthz")[0] == 200  # and the server goes on


def test_a_request_the_server_cannot_read_is_answered_in_the_visitors_language(
    make_app: MakeApp, serve: Serve
) -> None:
    port = serve(make_app())
    bad = b"GET / HTTP/1.1\r\nHost: x\r\nAccept-Language: de\r\nno colon here\r\n\r\n"
    status, headers, body = _raw(port, bad)
    assert status == "HTTP/1.1 400 Bad Request"
    assert headers["content-language"] == "de"
    assert body["error"]["detail"] == "Illegal header line."  # what exactly, as cheroot says
    english = _raw(port, bad.replace(b"Accept-Language: de", b"Accept-Language: en"))[2]
    assert body["error"]["code"] == english["error"]["code"] == "bad_request"
    assert body["error"]["message"] != english["error"]["message"]
