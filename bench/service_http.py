"""Requests per second through the real server: cache-hit ``POST /api/renders`` and share pages.

``python -m bench.service_http [--against TREE] [--rounds R] [--requests N] [--port P]`` starts
``python -m loopmark serve`` from this tree, pinned to one core (``taskset -c 1``), with
production settings (no debug), over a fresh data folder whose prepared templates are copied
from ``--prepared`` (so nothing is prepared while it measures), renders one caption, and then
drives it with ``hey`` (Debian's package, pinned to the other core) at concurrency 1 (latency:
p50, p99) and at concurrency 8 (throughput of the one server core), and reads the server's own
CPU per request from /proc (requests per second per core = 1 / that: the figure the shared
machine's load moves least), in R rounds of N requests per case: the median and the best round.
With ``--against``, a second checkout (main before a change) is served beside it on the next
port and measured batch by batch in turn with it, and each round's ratio is reported too. Prints
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
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
DEFAULT_REQUESTS = 2000
DEFAULT_ROUNDS = 5
WARM_REQUESTS = 200
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


CASES = tuple(
    (f"{name}_c{concurrency}", name, concurrency)
    for concurrency in CONCURRENCIES
    for name in ("cache_hit", "share_page")
)


class Served:
    """One tree's server, started over a fresh data folder, with a render done: the URLs and
    bodies of its cases."""

    def __init__(self, tree: Path, prepared: Path, port: int, data: Path) -> None:
        copied = data / "prepared"
        if prepared.is_dir():
            shutil.copytree(prepared, copied)
        self.base = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        self.process = start_server(tree.resolve(), data, copied, port)
        self.ready_s = wait_ready(self.base, started)
        key = render_once(self.base)
        payload = json.dumps({"template": TEMPLATE_ID, "caption": CAPTION}).encode()
        self.targets: dict[str, tuple[str, bytes | None]] = {
            "cache_hit": (f"{self.base}/api/renders", payload),
            "share_page": (f"{self.base}/s/{key}", None),
        }

    def measure(self, name: str, concurrency: int, requests: int) -> dict[str, Any]:
        """One batch: hey's figures and the server's own CPU per request."""
        url, body = self.targets[name]
        before = server_cpu_s(self.process.pid)
        row = hey(url, requests, concurrency, post=body)
        row["server_cpu_ms"] = (server_cpu_s(self.process.pid) - before) * MS_PER_SECOND / requests
        return row

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def summary(rows: list[dict[str, Any]], requests: int) -> dict[str, Any]:
    """A case's batches: the median and best CPU per request (per core: one over them), the
    median p50 and the median and worst p99."""
    cpu = sorted(r["server_cpu_ms"] for r in rows)
    p99 = [r["p99_ms"] for r in rows]
    return {
        "rounds": len(rows),
        "requests_per_round": requests,
        "server_cpu_ms": round(statistics.median(cpu), 3),
        "server_cpu_ms_best": round(cpu[0], 3),
        "per_core_per_second": round(MS_PER_SECOND / statistics.median(cpu)),
        "per_core_per_second_best": round(MS_PER_SECOND / cpu[0]),
        "p50_ms": round(statistics.median(r["p50_ms"] for r in rows), 2),
        "p99_ms": round(statistics.median(p99), 2),
        "p99_ms_worst": round(max(p99), 2),
        "status_codes": rows[-1]["status_codes"],
    }


def ratio(this: list[dict[str, Any]], against: list[dict[str, Any]]) -> dict[str, Any]:
    """Each round's CPU per request here over the other tree's, measured moments apart (the
    figure the machine's load moves least): their median and range."""
    ratios = [a["server_cpu_ms"] / b["server_cpu_ms"] for a, b in zip(this, against, strict=True)]
    return {
        "median": round(statistics.median(ratios), 3),
        "range": [round(min(ratios), 3), round(max(ratios), 3)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=Path.cwd())
    parser.add_argument(
        "--against",
        type=Path,
        help="another checkout, served beside this one and measured in turn with it",
    )
    parser.add_argument("--prepared", type=Path, default=Path("var/prepared"))
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS, help="per batch")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    args = parser.parse_args(argv)
    if shutil.which("hey") is None:
        raise SystemExit("needs hey (apt-get install hey)")
    trees = {"this": args.tree, **({"against": args.against} if args.against else {})}
    served: dict[str, Served] = {}
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {t: {c[0]: [] for c in CASES} for t in trees}
    with tempfile.TemporaryDirectory(prefix="loopmark-http-bench-") as tmp:
        try:
            for offset, (which, tree) in enumerate(trees.items()):
                data = Path(tmp) / which
                data.mkdir()
                served[which] = Served(tree, args.prepared, args.port + offset, data)
            for server in served.values():  # untimed: connections, caches, first reads
                for _, name, concurrency in CASES:
                    server.measure(name, concurrency, WARM_REQUESTS)
            # Batch by batch, each case on each tree in turn, who goes first alternating: both
            # see the same moments of the shared machine's load.
            for round_ in range(args.rounds):
                order = list(served.items())
                if round_ % 2:
                    order.reverse()
                for case, name, concurrency in CASES:
                    for which, server in order:
                        rows[which][case].append(server.measure(name, concurrency, args.requests))
        finally:
            for server in served.values():
                server.stop()
    results: dict[str, Any] = {
        which: {
            "ready_seconds": round(served[which].ready_s, 2),
            **{case: summary(rows[which][case], args.requests) for case, _, _ in CASES},
        }
        for which in trees
    }
    if args.against:
        # Each round's this ÷ against, measured moments apart: the figure the load moves least.
        results["this_over_against"] = {
            case: ratio(rows["this"][case], rows["against"][case]) for case, _, _ in CASES
        }
    else:
        results = results["this"]
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
