"""Slow downloads against a real server: a bounded loopback tool for reproducing by hand.

    python -m tests.web.slow_readers --readers 32 [--rate 2048] [--load 10] [--tree DIR]
        [--ports 18100-18999] [--downloads 40]

starts `loopmark serve` (from ``--tree``, this checkout by default: point it at an older checkout
to compare), opens ``--readers`` connections that each ask for a large static file (3.4 MB) with
a 4 KB receive buffer and read ``--rate`` bytes a second, and then for ``--load`` seconds
fetches /healthz, a small static file and the home page from LOAD_CLIENTS keep-alive clients
beside them. It prints a JSON line per path (requests/s, p50/p99 ms, failures) and one for the
readers (bytes received, connections the server closed or reset, other failures such as a
read that timed out) and the server (descriptors while they read and after, RSS). First, with
``--downloads N``, it fetches each of DOWNLOADS N times over one keep-alive connection as fast as
loopback takes them and prints the server's CPU seconds per download.
Loopback only; every socket has a timeout and the whole run is bounded.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.paths import REPO
from tests.web.idle_connections import (
    PORTS,
    SOCKET_TIMEOUT_SECONDS,
    load,
    raise_descriptor_limit,
    served,
    server_descriptors,
    server_env,
    server_rss_mb,
)

BIG_FILE = "/static/fonts/DroidSansFallback.ttf"
# 28 KB (the path it always had), 515 KB and 11 MB (handed to the sender).
DOWNLOADS = (
    "/static/img/icon-512.png",
    "/static/fonts/NotoSans-Bold.ttf",
    "/static/fonts/NotoColorEmoji.ttf",
)
PROBES = ("/healthz", "/static/img/logo.svg", "/")
RECEIVE_BUFFER_BYTES = 4096
READS_PER_SECOND = 2


def slow_reader(
    port: int, path: str, rate: int, stop: threading.Event, tally: dict[str, int]
) -> None:
    """One connection reading ``path`` at ``rate`` bytes a second until ``stop``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
    sock.settimeout(SOCKET_TIMEOUT_SECONDS)
    try:
        sock.connect(("127.0.0.1", port))
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: loopmark\r\n\r\n".encode())
        while not stop.wait(1 / READS_PER_SECOND):
            piece = sock.recv(max(1, rate // READS_PER_SECOND))
            if not piece:
                tally["closed"] += 1
                return
            tally["bytes"] += len(piece)
    except ConnectionResetError:  # the server dropped a reader below its minimum rate
        tally["reset"] += 1
    except OSError:
        tally["failed"] += 1
    finally:
        sock.close()


def cpu_seconds(pid: int) -> float:
    """A process's user and system CPU time so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def download_cpu(pid: int, port: int, path: str, count: int) -> dict[str, object]:
    """``count`` downloads of ``path``, one after another on one connection: the server's CPU."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=SOCKET_TIMEOUT_SECONDS)
    try:
        connection.request("GET", path)
        size = len(connection.getresponse().read())  # and the connection is open
        used, started = cpu_seconds(pid), time.monotonic()
        for _ in range(count):
            connection.request("GET", path)
            if len(connection.getresponse().read()) != size:
                raise RuntimeError(f"{path}: a short answer")
        seconds, used = time.monotonic() - started, cpu_seconds(pid) - used
    finally:
        connection.close()
    return {
        "path": path,
        "bytes": size,
        "downloads": count,
        "server_cpu_ms_each": round(used / count * 1000, 2),
        "wall_ms_each": round(seconds / count * 1000, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=32)
    parser.add_argument("--rate", type=int, default=2048, help="bytes a second per reader")
    parser.add_argument("--load", type=float, default=10.0, help="seconds of probes")
    parser.add_argument("--tree", type=Path, default=REPO, help="the checkout to serve from")
    parser.add_argument("--ports", default=f"{PORTS.start}-{PORTS.stop - 1}")
    parser.add_argument("--downloads", type=int, default=0, help="fast downloads of each file")
    args = parser.parse_args()
    readers = min(max(args.readers, 0), 2000)  # bounded
    seconds = min(max(args.load, 1.0), 60.0)
    first, last = (int(n) for n in args.ports.split("-"))
    raise_descriptor_limit(readers + 200)
    with tempfile.TemporaryDirectory(prefix="loopmark-slow-") as tmp:
        env = server_env(Path(tmp), "slow-readers")
        log = Path(tmp) / "server.log"
        with served(env, log, args.tree.resolve(), range(first, last + 1)) as (process, port):
            for path in DOWNLOADS if args.downloads > 0 else ():
                count = min(args.downloads, 1000)  # bounded
                print(json.dumps(download_cpu(process.pid, port, path, count)), flush=True)
            stop = threading.Event()
            tally = {"bytes": 0, "closed": 0, "reset": 0, "failed": 0}
            threads = [
                threading.Thread(
                    target=slow_reader, args=(port, BIG_FILE, args.rate, stop, tally), daemon=True
                )
                for _ in range(readers)
            ]
            for thread in threads:
                thread.start()
            time.sleep(2.0)  # every reader's answer under way
            reading_descriptors = len(server_descriptors(process.pid))
            for path in PROBES:
                print(json.dumps({"path": path, "readers": readers, **load(port, path, seconds)}))
            stop.set()
            for thread in threads:
                thread.join(SOCKET_TIMEOUT_SECONDS)
            print(
                json.dumps(
                    {
                        "readers": readers,
                        "reader_bytes": tally["bytes"],
                        "closed_by_server": tally["closed"],
                        "reset_by_server": tally["reset"],
                        "reader_failures": tally["failed"],
                        "server_descriptors_while_reading": reading_descriptors,
                        "server_descriptors_after": len(server_descriptors(process.pid)),
                        "server_rss_mb": server_rss_mb(process.pid),
                    }
                ),
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
