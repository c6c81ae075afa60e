"""Requests per second through the real server: cache-hit ``POST /api/renders`` and share pages.

``python -m bench.service_http [--requests N] [--port P]`` starts ``python -m loopmark serve``
from this tree, pinned to one core (``taskset -c 1``), with production settings (no debug),
over a fresh data folder whose prepared templates are copied from ``--prepared`` (so nothing is
prepared while it measures), renders one caption, and then drives it with ``hey`` (Debian's
package, pinned to the other core) at concurrency 1 (latency: p50, p99) and at concurrency 8
(throughput of the one server core), and reads the server's own CPU per request from /proc
(requests per second per core = 1 / that: the figure the shared machine's load moves least).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

SERVER_CORE = "1"
CLIENT_CORE = "0"
DEFAULT_PORT = 18200
DEFAULT_REQUESTS = 3000
CONCURRENCIES = (1, 8)
READY_TIMEOUT_S = 120.0
RENDER_TIMEOUT_S = 60.0
TEMPLATE_ID = "wake-up"
CAPTION = "Coffee first, then the world"
MS_PER_SECOND = 1000.0


def _get(url: str, *, data: bytes | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"} if data is not None else {}
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read(), exc.code
    try:
        return status, json.loads(body)
    except ValueError:
        return status, {}


def start_server(tree: Path, data: Path, prepared: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LOOPMARK_")},
        "LOOPMARK_DATA_DIR": str(data),
        "LOOPMARK_TEMPLATES_DIR": str(tree / "templates_video"),
        "LOOPMARK_PREPARED_DIR": str(prepared),
        "LOOPMARK_SITE_URL": f"http://127.0.0.1:{port}",
        "LOOPMARK_SECRET_KEY": "bench-only-secret-key-of-32-characters-or-more",
        "LOOPMARK_RENDER_CONCURRENCY": "1",
    }
    argv = ["taskset", "-c", SERVER_CORE, sys.executable, "-m", "loopmark", "serve"]
    log = open(data / "server.log", "wb")  # noqa: SIM115 - the server's for its lifetime
    return subprocess.Popen(
        [*argv, "--host", "127.0.0.1", "--port", str(port)],
        cwd=tree,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_ready(base: str, started: float) -> float:
    while time.monotonic() - started < READY_TIMEOUT_S:
        try:
            status, _ = _get(f"{base}/readyz")
            if status == 200:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not become ready")


def render_once(base: str) -> str:
    payload = json.dumps({"template": TEMPLATE_ID, "caption": CAPTION}).encode()
    status, body = _get(f"{base}/api/renders", data=payload)
    deadline = time.monotonic() + RENDER_TIMEOUT_S
    while status != 200:
        if time.monotonic() > deadline or status not in (200, 202):
            raise SystemExit(f"render failed: {status} {body}")
        time.sleep(0.2)
        status, body = _get(f"{base}/api/renders/{body['key']}")
    return str(body["key"])


def server_cpu_s(pid: int) -> float:
    """CPU seconds the server process has used so far (user + system, every thread)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def hey(url: str, requests: int, concurrency: int, *, post: bytes | None = None) -> dict[str, Any]:
    argv = ["taskset", "-c", CLIENT_CORE, "hey", "-n", str(requests), "-c", str(concurrency)]
    if post is not None:
        argv += ["-m", "POST", "-T", "application/json", "-d", post.decode()]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    percentiles = {
        int(p): float(s) * MS_PER_SECOND for p, s in re.findall(r"(\d+)%+ in ([\d.]+) secs", out)
    }
    codes = dict(re.findall(r"\[(\d+)\]\s+(\d+) responses", out))
    return {
        "requests_per_second": round(rps, 1),
        "p50_ms": round(percentiles.get(50, float("nan")), 2),
        "p99_ms": round(percentiles.get(99, float("nan")), 2),
        "status_codes": {code: int(n) for code, n in codes.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=Path.cwd())
    parser.add_argument("--prepared", type=Path, default=Path("var/prepared"))
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS)
    args = parser.parse_args(argv)
    if shutil.which("hey") is None:
        raise SystemExit("needs hey (apt-get install hey)")
    with tempfile.TemporaryDirectory(prefix="loopmark-http-bench-") as tmp:
        data = Path(tmp)
        prepared = data / "prepared"
        if args.prepared.is_dir():
            shutil.copytree(args.prepared, prepared)
        base = f"http://127.0.0.1:{args.port}"
        started = time.monotonic()
        server = start_server(args.tree.resolve(), data, prepared, args.port)
        try:
            ready_s = wait_ready(base, started)
            key = render_once(base)
            payload = json.dumps({"template": TEMPLATE_ID, "caption": CAPTION}).encode()
            results: dict[str, Any] = {"ready_seconds": round(ready_s, 2)}
            for concurrency in CONCURRENCIES:
                # A short untimed run first: connections, caches, the word lists' first read.
                for name, url, body in (
                    ("cache_hit", f"{base}/api/renders", payload),
                    ("share_page", f"{base}/s/{key}", None),
                ):
                    hey(url, 200, concurrency, post=body)
                    before = server_cpu_s(server.pid)
                    row = hey(url, args.requests, concurrency, post=body)
                    cpu_s = server_cpu_s(server.pid) - before
                    # The server's own CPU per request: what one core can answer, whatever
                    # else the machine was doing (the shared machine's load moves wall times).
                    row["server_cpu_ms"] = round(cpu_s * MS_PER_SECOND / args.requests, 3)
                    row["per_core_per_second"] = round(args.requests / cpu_s) if cpu_s else None
                    results[f"{name}_c{concurrency}"] = row
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
