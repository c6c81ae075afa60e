"""``python -m bench.soak`` (``make soak``): a trade-show morning against the real server.

It starts ``loopmark serve`` (cheroot, the production settings: no debug, a site URL, a secret
key, one trusted proxy hop) with DynamoDB records on moto's server and local media, all on
loopback, and in about ten minutes (``--quick``: about three):

1. holds IDLE_CONNECTIONS idle keep-alive connections open while share pages are fetched;
2. sends a spike of unique renders from VISITORS simulated visitors behind one address (each
   with the visitor token its page gave it), while SLOW_READERS phones download slowly (half a
   render's GIF, half a 3.4 MB file: more than loopback's send buffer takes at once), then as
   many visitors behind a trusted proxy (X-Forwarded-For);
3. kills the server with SIGKILL in the middle of the spike and starts it again;
4. freezes the records backend (SIGSTOP of moto's server) for FREEZE_SECONDS, while visitors
   ask for what needs the records (a finished render's status, a cache hit) and for a static
   file: the first must answer 503 + Retry-After within 2 s, the second keep answering;
5. polls every accepted render until it is done (honouring Retry-After, as the page does).

Share pages are sampled all along. It reports requests served, 5xx answers (503s to requests
sent while the backend is frozen are expected and counted apart, with how long they took),
renders accepted against finished, share-page p50/p99 by phase, how long after the thaw the
records breaker closed, the server's peak RSS and open descriptors, and writes bench/soak.md.
Every loop is bounded in count and time; only 127.0.0.1 is contacted.

Fairness: the records backend here is moto's server on the same two cores as the load, the web
server and its renders, which a real DynamoDB is not. Once moto has started, the soak lowers its
own priority by LOAD_NICENESS (``--no-nice`` to leave it), so the load generator, the server and
the render processes it starts run below moto, which keeps the priority it was started with.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
CLIP = REPO_ROOT.parent / "shared" / "clips" / "bigbuckbunny.mp4"
RESULTS = Path(__file__).resolve().parent / "soak.md"
TEMPLATE_ID = "soak"
IDLE_CONNECTIONS = 5000
VISITORS = 150  # per spike; two spikes (one address, then behind the proxy)
FREEZE_SECONDS = 20.0
START_TIMEOUT_SECONDS = 120.0
FINISH_TIMEOUT_SECONDS = 600.0
SAMPLE_INTERVAL_SECONDS = 0.05
VISITOR_HEADER = "X-Loopmark-Visitor"
# A visitor asks again after a 429/503 as long as Retry-After says (as the page does), for so long.
VISITOR_PATIENCE_SECONDS = 180.0
# While frozen: what a stalled backend must answer within (503 + Retry-After); how often a new
# visitor arrives asking for something that needs the records (each kind), and how often the
# static-file visitor asks.
FROZEN_ANSWER_SECONDS = 2.0
FREEZE_ARRIVAL_SECONDS = 0.5
FREEZE_ASK_INTERVAL_SECONDS = 0.2
# A breaker opening this soon after the thaw is the freeze's doing: calls sent while frozen time
# out (a prompt call: 1.7 s at most, loopmark.prompt_calls) after it.
THAW_SLACK_SECONDS = 3.0
STATIC_FILE = "/static/css/site.css"
# Phones on the venue's Wi-Fi downloading slowly during the first spike: each reads
# SLOW_READ_BYTES every SLOW_READ_EVERY_SECONDS (16 KB/s, 128 kbit/s) through a small window.
SLOW_READERS = 200
SLOW_READER_FILE = "/static/fonts/DroidSansFallback.ttf"
SLOW_RECEIVE_BUFFER_BYTES = 16 * 1024
SLOW_READ_BYTES = 8 * 1024
SLOW_READ_EVERY_SECONDS = 0.5
SLOW_READING_SECONDS = 30.0  # the least time the first spike's phase lasts (and they read)
# os.nice increment of the soak (and so of the server and its renders) below moto's server.
LOAD_NICENESS = 5
# Ports the soak may listen on (the server, moto); SOAK_PORTS=18100-18999 to choose others.
SOAK_PORTS = range(
    *(int(n) + i for i, n in enumerate(os.environ.get("SOAK_PORTS", "18100-18999").split("-")))
)
# bench/soak.md is written afresh each run down to this line; what follows it (notes, the
# figures of earlier runs) is kept.
NOTES_MARKER = "<!-- notes: kept across runs -->"


def free_port() -> int:
    """A free loopback port in SOAK_PORTS (this machine's helpers each keep to their own range)."""
    for port in SOAK_PORTS:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit(f"soak: no free port in {SOAK_PORTS}")


def wait_http(url: str, deadline_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise SystemExit(f"soak: {url} exited with {proc.returncode}") from None
            if time.monotonic() > deadline:
                raise SystemExit(f"soak: {url} did not answer in {deadline_s:.0f} s") from None
            time.sleep(0.2)


@dataclass
class Tally:
    """What the load saw, thread-safe."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter[int] = field(default_factory=Counter)
    frozen_503: int = 0
    # 5xx answers outside the freeze by status and error code ("503 records_unavailable").
    codes_5xx: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    share_ms: dict[str, list[float]] = field(default_factory=dict)
    phase: str = "warm"
    freezing: bool = False

    def answer(self, status: int, frozen: bool) -> None:
        """``frozen``: the request was sent while the records were frozen."""
        with self.lock:
            if status == 503 and frozen:
                self.frozen_503 += 1
            else:
                self.statuses[status] += 1

    def code_5xx(self, status: int, code: str, frozen: bool) -> None:
        with self.lock:
            if not (status == 503 and frozen):
                self.codes_5xx[f"{status} {code}"] += 1

    def error(self, what: str) -> None:
        with self.lock:
            self.errors[what] += 1

    def share(self, ms: float) -> None:
        with self.lock:
            self.share_ms.setdefault(self.phase, []).append(ms)


@dataclass
class Server:
    """``loopmark serve`` as a subprocess, restartable with the same settings."""

    env: dict[str, str]
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    peak_rss_kb: int = 0
    peak_fds: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "loopmark", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=log,
            cwd=REPO_ROOT,
        )
        log.close()
        wait_http(f"{self.base}/healthz", START_TIMEOUT_SECONDS, self.proc)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def sample(self) -> None:
        """Peak RSS and open descriptors of the running server (from /proc)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        pid = self.proc.pid
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            rss = int(re.search(r"VmRSS:\s+(\d+)", status)[1])  # type: ignore[index]
            fds = len(os.listdir(f"/proc/{pid}/fd"))
        except (OSError, TypeError):
            return
        self.peak_rss_kb = max(self.peak_rss_kb, rss)
        self.peak_fds = max(self.peak_fds, fds)


@contextmanager
def moto(data: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """moto's server answering one request at a time, as DynamoDB applies conditional writes to
    one item (tests.moto_server explains why the threaded one will not do)."""
    from tests.moto_server import SERIAL_MOTO_SERVER

    port = free_port()
    log = (data / "moto.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", SERIAL_MOTO_SERVER, str(port)], stdout=log, stderr=log
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/moto-api/", 60, proc)
        yield f"http://127.0.0.1:{port}", proc
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        proc.wait(30)
        log.close()


def request(
    server: Server,
    tally: Tally,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, dict[str, Any] | str]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    frozen = tally.freezing  # when it was sent
    try:
        payload = json.dumps(body).encode() if body is not None else None
        sent = {"Content-Type": "application/json"} if payload else {}
        conn.request(method, path, body=payload, headers={**sent, **(headers or {})})
        response = conn.getresponse()
        data = response.read()
    except (OSError, http.client.HTTPException) as exc:  # a kill mid-answer: IncompleteRead
        tally.error(type(exc).__name__)
        return 0, ""
    finally:
        conn.close()
    tally.answer(response.status, frozen)
    _last.retry_after = response.getheader("Retry-After")
    text = data.decode("utf-8", "replace")
    answer: dict[str, Any] | str = text
    if response.getheader("Content-Type", "").startswith("application/json"):
        try:
            answer = json.loads(text)
        except ValueError:
            pass
    if response.status >= 500:
        error = answer.get("error") if isinstance(answer, dict) else None
        code = str(error.get("code")) if isinstance(error, dict) else "-"
        tally.code_5xx(response.status, code, frozen)
    return response.status, answer


_last = threading.local()


def last_retry_after(default: float) -> float:
    """The Retry-After of this thread's last answer (seconds, within 1-30), or ``default``."""
    try:
        return min(max(float(getattr(_last, "retry_after", None) or default), 1.0), 30.0)
    except ValueError:
        return default


def hold_idle(server: Server, count: int, stop: threading.Event, held: list[int]) -> None:
    """Keep ``count`` idle keep-alive connections open; reopen what the server closes."""
    socks: list[socket.socket] = []
    while not stop.is_set():
        socks = [s for s in socks if s.fileno() != -1]
        while len(socks) < count and not stop.is_set():
            try:
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            except OSError:
                break  # the server is restarting, or at its limit: try again shortly
            socks.append(sock)
        held.append(len(socks))
        stop.wait(5)
        for sock in list(socks):
            try:
                sock.setblocking(False)
                if sock.recv(1, socket.MSG_PEEK) == b"":
                    sock.close()
            except BlockingIOError:
                pass
            except OSError:
                sock.close()
            finally:
                if sock.fileno() != -1:
                    sock.setblocking(True)
    for sock in socks:
        sock.close()


def sample_shares(server: Server, tally: Tally, keys: list[str], stop: threading.Event) -> None:
    i = 0
    while not stop.is_set():
        server.sample()
        if keys:
            started = time.perf_counter()
            status, _ = request(server, tally, "GET", f"/s/{keys[i % len(keys)]}", timeout=10)
            if status == 200:
                tally.share((time.perf_counter() - started) * 1000)
            i += 1
        stop.wait(SAMPLE_INTERVAL_SECONDS)


@dataclass
class SlowReads:
    """What the slow readers got, thread-safe."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, **counts: int) -> None:
        with self.lock:
            self.counts.update(counts)


def slow_reader(server: Server, path: str, stop: threading.Event, reads: SlowReads) -> None:
    """One phone downloading ``path`` at 16 KB/s until it has it all or ``stop``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RECEIVE_BUFFER_BYTES)
    sock.settimeout(15)
    head, length, received = b"", None, 0
    try:
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n".encode())
        reads.add(started=1)
        while not stop.wait(SLOW_READ_EVERY_SECONDS):
            piece = sock.recv(SLOW_READ_BYTES)
            if not piece:
                reads.add(closed_early=1)
                return
            if length is None:
                head += piece
                if b"\r\n\r\n" not in head:
                    continue
                head, _, piece = head.partition(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200 "):
                    reads.add(**{f"status {head[9:12].decode()}": 1})
                    return
                found = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                length = int(found[1]) if found else -1
            received += len(piece)
            reads.add(bytes=len(piece))
            if received >= length >= 0:
                reads.add(completed=1)
                return
        reads.add(still_reading=1)
    except ConnectionResetError:  # the server resets a reader below its minimum rate
        reads.add(reset_by_server=1)
    except OSError as exc:
        reads.add(**{type(exc).__name__: 1})
    finally:
        sock.close()


def start_slow_readers(
    server: Server, tally: Tally, count: int, key: str | None, stop: threading.Event
) -> tuple[list[threading.Thread], SlowReads, list[str]]:
    """``count`` slow readers, half of them of render ``key``'s GIF, half of SLOW_READER_FILE."""
    paths = [SLOW_READER_FILE]
    if key:
        _, answer = request(server, tally, "GET", f"/api/renders/{key}")
        gif = answer.get("gif_url") if isinstance(answer, dict) else None
        if isinstance(gif, str):
            paths.insert(0, urllib.parse.urlsplit(gif).path)
    reads = SlowReads()
    threads = [
        threading.Thread(
            target=slow_reader, args=(server, paths[n % len(paths)], stop, reads), daemon=True
        )
        for n in range(count)
    ]
    for thread in threads:
        thread.start()
    return threads, reads, paths


def visitor_token(server: Server, tally: Tally, forwarded_for: str | None) -> str | None:
    """The token a visitor's page asks for (GET /api/visitor), as the page's script does."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    status, answer = request(server, tally, "GET", "/api/visitor", headers=headers)
    if status != 200 or not isinstance(answer, dict):
        return None
    token = answer.get("token")
    return token if isinstance(token, str) else None


def spike(
    server: Server, tally: Tally, label: str, count: int, behind_proxy: bool, accepted: set[str]
) -> Counter[int]:
    """``count`` visitors, each asking for one unique caption once (retrying after a 429/503 as
    the Retry-After says, within a bound)."""
    answers: Counter[int] = Counter()
    lock = threading.Lock()

    def visit(n: int) -> None:
        address = f"198.51.100.{n % 250 + 1}" if behind_proxy else None
        token = visitor_token(server, tally, address)
        headers = {VISITOR_HEADER: token} if token else {}
        if address:
            headers["X-Forwarded-For"] = address
        body = {"template": TEMPLATE_ID, "caption": f"{label} visitor {n}"}
        deadline = time.monotonic() + VISITOR_PATIENCE_SECONDS
        while True:
            _last.retry_after = None
            status, answer = request(server, tally, "POST", "/api/renders", body, headers)
            if status in (200, 202) and isinstance(answer, dict):
                with lock:
                    accepted.add(answer["key"])
                    answers[status] += 1
                return
            if status in (429, 503, 0) and time.monotonic() < deadline:
                time.sleep(last_retry_after(2.0))  # as the page's script does
                continue
            with lock:
                answers[status] += 1
            return

    threads = [threading.Thread(target=visit, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
        time.sleep(0.01)  # the spike builds over a couple of seconds, as a crowd does
    for thread in threads:
        thread.join(300)
    return answers


def wait_finished(server: Server, tally: Tally, keys: set[str]) -> tuple[int, Counter[str]]:
    deadline = time.monotonic() + FINISH_TIMEOUT_SECONDS
    pending = set(keys)
    last: Counter[str] = Counter()
    while pending and time.monotonic() < deadline:
        last = Counter()
        pause = 1.0
        for key in sorted(pending):
            _last.retry_after = None
            status, answer = request(server, tally, "GET", f"/api/renders/{key}")
            if status == 200:
                pending.discard(key)
            else:
                last[str(status)] += 1
            if status in (429, 503):  # told to come back later: the rest of the pass waits too
                pause = last_retry_after(2.0)
                break
        if pending:
            time.sleep(pause)
    return len(keys) - len(pending), last


@dataclass
class FrozenAsks:
    """What the freeze visitors asked and got: by kind, (status, seconds, Retry-After given)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    answers: dict[str, list[tuple[int, float, bool]]] = field(default_factory=dict)

    def add(self, kind: str, status: int, seconds: float, retry_after: bool) -> None:
        with self.lock:
            self.answers.setdefault(kind, []).append((status, seconds, retry_after))

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for kind, answers in self.answers.items():
            times = [seconds for _, seconds, _ in answers]
            refused = [(seconds, ra) for status, seconds, ra in answers if status == 503]
            out[kind] = {
                "n": len(answers),
                "statuses": dict(sorted(Counter(status for status, _, _ in answers).items())),
                "p50_ms": round(statistics.median(times) * 1000, 1) if times else None,
                "max_ms": round(max(times) * 1000, 1) if times else None,
                "503_with_retry_after": sum(1 for _, ra in refused if ra),
                "503_within_2s": sum(1 for t, _ in refused if t <= FROZEN_ANSWER_SECONDS),
                "503_p50_ms": (
                    round(statistics.median(t for t, _ in refused) * 1000, 1) if refused else None
                ),
                "503_max_ms": round(max(t for t, _ in refused) * 1000, 1) if refused else None,
            }
        return out


def ask_while_frozen(
    server: Server, tally: Tally, kind: str, asks: FrozenAsks, stop: threading.Event,
    method: str, path: str, body: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """Ask for ``path`` again and again while the records are frozen, as a visitor would (after
    a 503, as long as its Retry-After says), recording each answer and how long it took."""
    while not stop.is_set():
        _last.retry_after = None
        started = time.perf_counter()
        status, _ = request(server, tally, method, path, body, timeout=30)
        seconds = time.perf_counter() - started
        retry_after = getattr(_last, "retry_after", None) is not None
        if status:
            asks.add(kind, status, seconds, retry_after)
        pause = last_retry_after(1.0) if status == 503 else FREEZE_ASK_INTERVAL_SECONDS
        stop.wait(pause)


def arrivals(
    server: Server, tally: Tally, kind: str, asks: FrozenAsks, stop: threading.Event,
    method: str, path: str, body: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """A new visitor every FREEZE_ARRIVAL_SECONDS until ``stop``, each asking as
    :func:`ask_while_frozen` does (a crowd arriving, not one client hammering)."""
    visitors: list[threading.Thread] = []
    while not stop.is_set():
        visitor = threading.Thread(
            target=ask_while_frozen,
            args=(server, tally, kind, asks, stop, method, path, body),
            daemon=True,
        )
        visitor.start()
        visitors.append(visitor)
        stop.wait(FREEZE_ARRIVAL_SECONDS)
    for visitor in visitors:
        visitor.join(60)


def breaker_events(log: Path, since: float) -> tuple[list[float], list[float]]:
    """Wall-clock times (epoch seconds) of the records breaker opening and closing after
    ``since``, from the server's JSON log."""
    opened: list[float] = []
    closed: list[float] = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if '"loopmark.service.breaker"' not in line or "records backend" not in line:
            continue
        try:
            entry = json.loads(line)
            when = datetime.fromisoformat(entry["time"]).timestamp()
        except (ValueError, KeyError, TypeError):
            continue
        if when < since:
            continue
        if "circuit open" in entry.get("message", ""):
            opened.append(when)
        elif "circuit closed" in entry.get("message", ""):
            closed.append(when)
    return opened, closed


def records_calls_by_endpoint(log: Path) -> dict[str, dict[str, float]]:
    """From the server's access lines: requests by endpoint (keys folded), and the calls they
    sent to the records in all and per request (``records_calls``, see loopmark.web.logs)."""
    requests: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if '"loopmark.site.access"' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        path = re.sub(r"^/(api/renders|s|r|m|media)/[^/]+", r"/\1/KEY", str(entry.get("path")))
        endpoint = f"{entry.get('method')} {path}"
        requests[endpoint] += 1
        calls[endpoint] += int(entry.get("records_calls", 0))
    return {
        endpoint: {
            "requests": n,
            "records_calls": calls[endpoint],
            "per_request": calls[endpoint] / n,
        }
        for endpoint, n in requests.most_common()
        if calls[endpoint]
    }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def prepare_template(env: dict[str, str]) -> None:
    """A 240-pixel, one-and-a-half-second template from the shared clip: quick to render."""
    subprocess.run(
        [
            sys.executable, "-m", "loopmark", "templates", "add", TEMPLATE_ID,
            "--video", str(CLIP), "--start", "1", "--duration", "1.5", "--width", "240",
            "--fps", "10", "--name", "Soak",
        ],
        env=env, check=True, cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="about three minutes, smaller")
    parser.add_argument("--idle", type=int, default=None, help="idle connections to hold")
    parser.add_argument(
        "--slow-readers", type=int, default=SLOW_READERS, help="slow downloads in the spike"
    )
    parser.add_argument(
        "--no-nice", action="store_true", help="leave the load and the server at moto's priority"
    )
    args = parser.parse_args(argv)
    idle = args.idle or (1500 if args.quick else IDLE_CONNECTIONS)
    visitors = 40 if args.quick else VISITORS
    readers = min(max(args.slow_readers, 0), 1000)
    freeze_s = 8.0 if args.quick else FREEZE_SECONDS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = idle * 2 + readers + 1024
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, wanted)), hard))

    data = Path(tempfile.mkdtemp(prefix="loopmark-soak-"))
    report: dict[str, Any] = {"idle_target": idle, "visitors_per_spike": visitors}
    started = time.monotonic()
    soak_started = time.time()
    with moto(data) as (endpoint, moto_proc):
        if not args.no_nice:
            # Before any thread or server starts: they (and the renders) inherit it; moto not.
            os.nice(LOAD_NICENESS)
        report["load_niceness_over_moto"] = 0 if args.no_nice else LOAD_NICENESS
        port = free_port()
        env = {
            **os.environ,
            "LOOPMARK_DATA_DIR": str(data),
            "LOOPMARK_TEMPLATES_DIR": str(data / "templates"),
            "LOOPMARK_RECORDS": "dynamodb://loopmark-soak",
            "LOOPMARK_SITE_URL": f"http://127.0.0.1:{port}",
            "LOOPMARK_SECRET_KEY": "soak-" + "k" * 40,
            "LOOPMARK_PROXY_HOPS": "1",
            "LOOPMARK_TRUSTED_PROXIES": "127.0.0.1",
            "LOOPMARK_JSON_LOGS": "on",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "soak",
            "AWS_SECRET_ACCESS_KEY": "soak",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        env.pop("LOOPMARK_DEBUG", None)
        subprocess.run([sys.executable, "-m", "loopmark", "setup"], env=env, check=True,
                       cwd=REPO_ROOT, stdout=subprocess.DEVNULL)  # fmt: skip
        prepare_template(env)
        server = Server(env=env, port=port, log=data / "server.log")
        server.start()
        tally = Tally()
        stop = threading.Event()
        held: list[int] = []
        shares: list[str] = []
        accepted: set[str] = set()
        keeper = threading.Thread(target=hold_idle, args=(server, idle, stop, held), daemon=True)
        sampler = threading.Thread(
            target=sample_shares, args=(server, tally, shares, stop), daemon=True
        )
        keeper.start()
        # A few renders first, so share pages have something to show.
        tally.phase = "warm"
        spike(server, tally, "warm", 5, False, accepted)
        done, _ = wait_finished(server, tally, set(accepted))
        shares.extend(sorted(accepted))
        sampler.start()
        time.sleep(10)
        report["idle_held_at_start"] = max(held) if held else 0

        tally.phase = "spike, one address"
        reading, reading_since = threading.Event(), time.monotonic()
        slow, reads, read_paths = start_slow_readers(
            server, tally, readers, shares[0] if shares else None, reading
        )
        one_address = spike(server, tally, "one-address", visitors, False, accepted)
        report["spike_one_address"] = dict(one_address)
        # Share pages sampled beside the readers for a while, however short the spike (with
        # --slow-readers 0 too, so the phase compares).
        time.sleep(max(0.0, SLOW_READING_SECONDS - (time.monotonic() - reading_since)))
        reading.set()
        for reader in slow:
            reader.join(30)
        report["slow_readers"] = {"count": readers, "paths": read_paths, **reads.counts}

        tally.phase = "spike, behind a proxy (killed midway)"

        def restart() -> None:
            server.kill()
            server.start()

        killer = threading.Timer(4.0, restart)
        killer.start()
        behind_proxy = spike(server, tally, "proxy", visitors, True, accepted)
        killer.join()
        report["spike_behind_proxy"] = dict(behind_proxy)

        tally.phase = "records frozen"
        # What needs the records (a finished render's status, a cache hit) and what must not
        # (a static file; share pages are sampled all along), asked while frozen.
        asks, thawed = FrozenAsks(), threading.Event()
        warm_key = shares[0] if shares else "0" * 24
        askers = [
            threading.Thread(target=target, args=args_, daemon=True)
            for target, args_ in (
                (arrivals, (server, tally, "render status", asks, thawed, "GET",
                            f"/api/renders/{warm_key}")),
                (arrivals, (server, tally, "cache hit", asks, thawed, "POST", "/api/renders",
                            {"template": TEMPLATE_ID, "caption": "warm visitor 0"})),
                (ask_while_frozen, (server, tally, "static file", asks, thawed, "GET",
                                    STATIC_FILE)),
            )
        ]  # fmt: skip
        tally.freezing = True
        moto_proc.send_signal(signal.SIGSTOP)
        for asker in askers:
            asker.start()
        time.sleep(freeze_s)
        tally.freezing = False  # before SIGCONT: what is sent from now on counts as outside
        thawed.set()
        moto_proc.send_signal(signal.SIGCONT)
        thaw_at = time.time()
        for asker in askers:
            asker.join(60)
        report["frozen_asks"] = asks.report()
        time.sleep(5)

        tally.phase = "recovery"
        finished, still = wait_finished(server, tally, accepted)
        stop.set()
        sampler.join(30)
        keeper.join(30)
        server.sample()
        report.update(
            accepted=len(accepted),
            finished=finished,
            unfinished=dict(still),
            idle_held_max=max(held) if held else 0,
            statuses=dict(sorted(tally.statuses.items())),
            answers_5xx=sum(n for s, n in tally.statuses.items() if s >= 500),
            answers_503_while_frozen=tally.frozen_503,
            answers_5xx_by_code=dict(tally.codes_5xx.most_common()),
            connection_errors=dict(tally.errors),
            share_ms={
                phase: {
                    "n": len(values),
                    "p50": round(statistics.median(values), 1),
                    "p99": round(percentile(values, 0.99), 1),
                }
                for phase, values in tally.share_ms.items()
            },
            peak_rss_mb=round(server.peak_rss_kb / 1024, 1),
            peak_fds=server.peak_fds,
            seconds=round(time.monotonic() - started, 1),
        )
        server.stop()
        opened, closed = breaker_events(server.log, soak_started)
        report["records_calls"] = records_calls_by_endpoint(server.log)
        report["records_breaker_opened"] = len(opened)
        report["records_breaker_opened_outside_freeze"] = sum(
            1 for t in opened if not thaw_at - freeze_s - 1 <= t <= thaw_at + THAW_SLACK_SECONDS
        )
        after_thaw = [t for t in closed if t >= thaw_at]
        report["breaker_closed_after_thaw_s"] = (
            round(after_thaw[0] - thaw_at, 1) if after_thaw else None
        )
    print(json.dumps(report, indent=2))
    write_markdown(report, quick=args.quick)
    ok = report["accepted"] == report["finished"] and report["answers_5xx"] == 0
    return 0 if ok else 1


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """A Markdown table after a blank line: the first column left-aligned, the rest right."""
    rule = "|---|" + "---:|" * (len(header) - 1)
    return ["", "| " + " | ".join(header) + " |", rule] + [
        "| " + " | ".join(str(cell) for cell in row) + " |" for row in rows
    ]


def slow_readers(report: dict[str, Any]) -> str:
    reads = dict(report.get("slow_readers") or {})
    if not reads.get("count"):
        return "none"
    count, paths = reads.pop("count"), reads.pop("paths")
    megabytes = round(reads.pop("bytes", 0) / 1e6, 1)
    return f"{count} of {', '.join(f'`{p}`' for p in paths)}: {megabytes} MB read, {reads}"


def write_markdown(report: dict[str, Any], *, quick: bool) -> None:
    lines = [
        "# Soak: a trade-show morning against `loopmark serve`",
        "",
        f"`python -m bench.soak{' --quick' if quick else ''}`, {time.strftime('%Y-%m-%d')}, "
        f"on this two-core machine; {report['seconds']} s in all.",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| idle connections held (most at once) | {report['idle_held_max']} "
        f"(target {report['idle_target']}) |",
        f"| renders accepted / finished | {report['accepted']} / {report['finished']} |",
        f"| 5xx answers (besides 503 while frozen) | {report['answers_5xx']} |",
        f"| … by status and error code | {report['answers_5xx_by_code'] or 'none'} |",
        f"| 503 answers while the records were frozen | {report['answers_503_while_frozen']} |",
        f"| answers by status | {report['statuses']} |",
        f"| connection errors | {report['connection_errors'] or 'none'} |",
        f"| server peak RSS | {report['peak_rss_mb']} MB |",
        f"| server peak open descriptors | {report['peak_fds']} |",
        f"| records breaker opened (outside the freeze) | {report['records_breaker_opened']} "
        f"({report['records_breaker_opened_outside_freeze']}) |",
        f"| records breaker closed after the thaw | {report['breaker_closed_after_thaw_s']} s |",
        f"| load and server niceness above moto's | {report['load_niceness_over_moto']} |",
        f"| slow readers during the first spike (16 KB/s each) | {slow_readers(report)} |",
    ]
    lines += table(
        ["asked while the records were frozen", "n", "answers", "p50 ms", "max ms",
         "503 with Retry-After", "503 within 2 s", "503 p50 / max ms"],
        [[kind, f["n"], f["statuses"], f["p50_ms"], f["max_ms"], f["503_with_retry_after"],
          f["503_within_2s"], f"{f['503_p50_ms']} / {f['503_max_ms']}"]
         for kind, f in report["frozen_asks"].items()],
    )  # fmt: skip
    lines += table(
        ["records calls by endpoint", "requests", "records calls", "per request"],
        [[endpoint, f["requests"], f["records_calls"], f"{f['per_request']:.2f}"]
         for endpoint, f in report["records_calls"].items()],
    )  # fmt: skip
    lines += table(
        ["share pages, by phase", "n", "p50 ms", "p99 ms"],
        [[phase, f["n"], f["p50"], f["p99"]] for phase, f in report["share_ms"].items()],
    )
    previous = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    notes = previous[previous.index(NOTES_MARKER) :] if NOTES_MARKER in previous else NOTES_MARKER
    RESULTS.write_text("\n".join(lines) + "\n\n" + notes.rstrip("\n") + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
