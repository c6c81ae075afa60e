"""Idle keep-alive connections against a real server: a bounded loopback tool for the tests and
for reproducing by hand.

    python -m tests.web.idle_connections --connections 1100   # starts `loopmark serve` itself

opens that many keep-alive connections (each sends one request and reads the answer, then stays
open and idle), asks the server for ``/healthz`` on a fresh connection, reports whether it
answered and whether the server process is still alive, then closes everything. Loopback only;
every socket has a timeout and the whole run is bounded.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
SOCKET_TIMEOUT_SECONDS = 10.0
GIVE_UP_AFTER_FAILURES = 3
SERVER_START_SECONDS = 60.0
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(env: dict[str, str], log: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``loopmark serve`` in a child process on a free loopback port, stopped at the end."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "loopmark", "serve", "--host", HOST, "--port", str(port)],
            env=env,
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1100)
    args = parser.parse_args()
    count = min(max(args.connections, 1), 6000)  # bounded
    raise_descriptor_limit(count + 100)
    with tempfile.TemporaryDirectory(prefix="loopmark-idle-") as tmp:
        templates = Path(tmp) / "templates"
        templates.mkdir()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("LOOPMARK_")},
            "LOOPMARK_DATA_DIR": tmp,
            "LOOPMARK_TEMPLATES_DIR": str(templates),
            "LOOPMARK_DEBUG": "1",
            "LOOPMARK_JSON_LOGS": "off",
        }
        log = Path(tmp) / "server.log"
        with served(env, log) as (process, port):
            started = time.monotonic()
            sockets, refused = open_idle(port, count)
            status, _ = get(port, "/healthz")
            alive = process.poll() is None
            descriptors = server_descriptors(process.pid)
            close_all(sockets)
            report = {
                "connections": count,
                "opened": len(sockets),
                "refused": refused,
                "healthz_status": status,
                "server_alive": alive,
                "server_descriptors": len(descriptors),
                "server_highest_descriptor": max(descriptors, default=-1),
                "seconds": round(time.monotonic() - started, 2),
            }
        errors = [line for line in log.read_text().splitlines() if "Error" in line]
        report["server_errors"] = errors[-3:]
    print(json.dumps(report, indent=2))
    return 0 if alive and status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
