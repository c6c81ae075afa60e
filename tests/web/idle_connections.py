"""Idle connections against a real server: a bounded loopback tool for the tests and for
reproducing by hand.

    python -m tests.web.idle_connections --connections 0,1500,5000 [--silent] [--load 10]
        [--tree /work/main]

starts `loopmark serve` (from ``--tree``, this checkout by default: point it at an older checkout
to compare servers), renders one caption for a share page, then for each count: opens that many
idle connections (each sends one request and reads the answer, then stays open; with
``--silent`` they send nothing at all, as a browser's spare connections), and for ``--load``
seconds fetches the share page from LOAD_CLIENTS keep-alive clients beside them. It prints a JSON
line per count (requests/s, p50/p99 ms, failures, the server's descriptors and RSS, whether it is
alive). Loopback only, on LOOPMARK_PORT_RANGE (18100-18999); every socket has a timeout and the
whole run is bounded.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.paths import CLIP, REPO

HOST = "127.0.0.1"
SOCKET_TIMEOUT_SECONDS = 10.0
GIVE_UP_AFTER_FAILURES = 3
SERVER_START_SECONDS = 120.0
LOAD_CLIENTS = 4
PORTS = range(18100, 19000)

KEEP_ALIVE_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: loopmark\r\nConnection: keep-alive\r\n\r\n"


@dataclass
class IdleResult:
    opened: int  # connections that got an answer and stayed open
    refused: int  # connections the server closed, reset or never answered
    seconds: float


def raise_descriptor_limit(wanted: int) -> None:
    """This process needs one descriptor per client socket (and a server thread's as many)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def open_idle(port: int, count: int, path: str = "/healthz") -> tuple[list[socket.socket], int]:
    """``count`` connections, each answered once and left open; (the open ones, refusals)."""
    request = KEEP_ALIVE_REQUEST.replace(b"/healthz", path.encode())
    sockets: list[socket.socket] = []
    refused = 0
    in_a_row = 0
    for _ in range(count):
        if in_a_row >= GIVE_UP_AFTER_FAILURES:
            refused += 1  # the server is gone or full: do not wait for every socket
            continue
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(SOCKET_TIMEOUT_SECONDS)
        try:
            sock.connect((HOST, port))
            sock.sendall(request)
            head = sock.recv(65536)
            if not head.startswith(b"HTTP/1.1 "):
                raise ConnectionError("no answer")
        except OSError:
            refused += 1
            in_a_row += 1
            sock.close()
            continue
        in_a_row = 0
        sockets.append(sock)
    return sockets, refused


def close_all(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One request on a fresh connection: (status, body); (0, reason) when it fails."""
    connection = http.client.HTTPConnection(HOST, port, timeout=SOCKET_TIMEOUT_SECONDS)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    except OSError as exc:
        return 0, repr(exc).encode()
    finally:
        connection.close()


def server_descriptors(pid: int) -> list[int]:
    """The open descriptor numbers of a process (Linux /proc), empty when it is gone."""
    try:
        return sorted(int(name) for name in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return []


def free_port(ports: range = PORTS) -> int:
    for port in ports:
        with socket.socket() as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports}")


def server_env(tmp: Path, name: str) -> dict[str, str]:
    """The environment of a server whose data (and an empty templates folder) live in ``tmp``:
    production-like, rate limits off, JSON logs; no bytecode written into another ``--tree``."""
    (tmp / "templates").mkdir()
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("LOOPMARK_")},
        "LOOPMARK_DATA_DIR": str(tmp),
        "LOOPMARK_TEMPLATES_DIR": str(tmp / "templates"),
        "LOOPMARK_SITE_URL": "http://127.0.0.1",
        "LOOPMARK_SECRET_KEY": f"{name}-" + "k" * 32,
        "LOOPMARK_RATE_LIMITS": "off",
        "LOOPMARK_JSON_LOGS": "on",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


@contextmanager
def served(
    env: dict[str, str], log: Path, tree: Path = REPO, ports: range = PORTS
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``loopmark serve`` (from ``tree``) in a child process on a free loopback port (one of
    ``ports``), stopped at the end."""
    port = free_port(ports)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "loopmark", "serve", "--host", HOST, "--port", str(port)],
            env={**env, "PYTHONPATH": str(tree)},
            cwd=tree,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while get(port, "/healthz")[0] == 0:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield process, port
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def open_silent(port: int, count: int) -> tuple[list[socket.socket], int]:
    """``count`` connections that send nothing; (the open ones, failures)."""
    sockets: list[socket.socket] = []
    failed = 0
    for _ in range(count):
        try:
            sockets.append(socket.create_connection((HOST, port), timeout=SOCKET_TIMEOUT_SECONDS))
        except OSError:
            failed += 1
            if failed >= GIVE_UP_AFTER_FAILURES:
                break
    return sockets, failed


def load(port: int, path: str, seconds: float) -> dict[str, float | int | None]:
    """LOAD_CLIENTS keep-alive clients fetching ``path`` for ``seconds``: rate and latencies."""
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection(HOST, port, timeout=SOCKET_TIMEOUT_SECONDS)
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                connection.close()
                ok = False
            with lock:
                if ok:
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    failures[0] += 1
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(LOAD_CLIENTS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 2 * SOCKET_TIMEOUT_SECONDS)
    elapsed = time.monotonic() - started
    latencies.sort()
    return {
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(latencies[int(0.99 * len(latencies))], 1) if latencies else None,
        "failures": failures[0],
    }


def server_rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    kb = next((line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")), 0)
    return round(int(kb) / 1024, 1)


def share_page(port: int) -> str:
    """Render one caption on the soak's small template; its share page's path."""
    body = json.dumps({"template": "idle", "caption": "Idle crowd"}).encode()
    deadline = time.monotonic() + SERVER_START_SECONDS
    while True:
        connection = http.client.HTTPConnection(HOST, port, timeout=SOCKET_TIMEOUT_SECONDS * 3)
        connection.request("POST", "/api/renders", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        answer = json.loads(response.read())
        connection.close()
        if response.status == 200:
            return f"/s/{answer['key']}"
        if time.monotonic() > deadline:
            raise RuntimeError(f"the render did not finish: {answer}")
        time.sleep(0.5)


def add_template(env: dict[str, str], tree: Path) -> None:
    subprocess.run(
        [
            sys.executable, "-m", "loopmark", "templates", "add", "idle", "--video", str(CLIP),
            "--start", "1", "--duration", "1.5", "--width", "240", "--fps", "10",
        ],
        env={**env, "PYTHONPATH": str(tree)}, cwd=tree, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", default="1100", help="counts, comma-separated")
    parser.add_argument("--silent", action="store_true", help="idle connections send nothing")
    parser.add_argument("--load", type=float, default=0.0, help="seconds of share-page load")
    parser.add_argument("--tree", type=Path, default=REPO, help="the checkout to serve from")
    args = parser.parse_args()
    counts = [min(max(int(n), 0), 6000) for n in args.connections.split(",")]  # bounded
    seconds = min(max(args.load, 0.0), 60.0)
    tree = args.tree.resolve()
    raise_descriptor_limit(max(counts) + 200)
    alive = True
    with tempfile.TemporaryDirectory(prefix="loopmark-idle-") as tmp:
        env = server_env(Path(tmp), "idle-connections")
        if seconds:
            add_template(env, tree)
        log = Path(tmp) / "server.log"
        with served(env, log, tree) as (process, port):
            path = share_page(port) if seconds else "/healthz"
            held: list[socket.socket] = []
            for count in sorted(counts):
                opener = open_silent if args.silent else open_idle
                more, refused = opener(port, count - len(held))
                held += more
                time.sleep(1.0)
                status, _ = get(port, "/healthz")
                report: dict[str, object] = {
                    "idle": len(held),
                    "refused": refused,
                    "silent": args.silent,
                    "healthz_status": status,
                }
                if seconds:
                    report.update(load(port, path, seconds))
                alive = alive and process.poll() is None and status == 200
                report.update(
                    server_alive=process.poll() is None,
                    server_descriptors=len(server_descriptors(process.pid)),
                    server_rss_mb=server_rss_mb(process.pid),
                )
                print(json.dumps(report), flush=True)
            close_all(held)
        errors = [line for line in log.read_text().splitlines() if "Error" in line]
        if errors:
            print(json.dumps({"server_errors": errors[-3:]}))
    return 0 if alive else 1


if __name__ == "__main__":
    sys.exit(main())
